"""A job that always fails must end failed with its reason after a bounded number of tries and
never block the queue; a job that hits its time limit fails with "time limit" and the worker
carries on."""

import pytest

from tests.support.factories import CaseFactory
from tests.support.fault_fixtures import MAX_ATTEMPTS, SOFT_LIMIT_S
from tests.support.waiting import wait_for_jobs
from webapp.cases.models import JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_file_that_kills_its_worker_every_time_is_failed_after_bounded_tries(live_worker, upload):
    main_pid = live_worker.pid
    [poison] = upload("fault-crash.png")
    [good] = upload("after-poison.png")  # queued behind it
    jobs = wait_for_jobs([poison, good], timeout=180)
    assert jobs[poison].status == JobStatus.FAILED
    assert jobs[poison].attempts == MAX_ATTEMPTS
    assert f"stopped {MAX_ATTEMPTS} times" in jobs[poison].error
    assert jobs[good].status == JobStatus.DONE, jobs[good].error  # the queue kept moving
    assert live_worker.alive() and live_worker.pid == main_pid  # only pool processes died


def test_file_that_always_fails_to_read_fails_once_with_its_reason(live_worker, owner):
    """The other kind of poison: an exception, not a crash. One try, the reader's message."""
    from django.db import transaction

    from webapp.cases.storage import private_storage

    with transaction.atomic():
        case = CaseFactory(owner=owner, extension="jpg", client_address="10.0.0.5")
        name = case.images.get().original.name
        with private_storage.open(name, "wb") as handle:
            handle.write(b"\xff\xd8\xff\xe0 not really a jpeg")
    job_id = case.images.get().job.pk
    job = wait_for_jobs([job_id])[job_id]
    assert job.status == JobStatus.FAILED and job.attempts == 1
    assert "damaged or truncated" in job.error


def test_time_limit_fails_the_job_and_the_worker_recovers(live_worker, upload):
    [hang] = upload("fault-hang.png")
    [good] = upload("after-hang.png")
    jobs = wait_for_jobs([hang, good], timeout=SOFT_LIMIT_S + 120)
    assert jobs[hang].status == JobStatus.FAILED
    assert "time limit" in jobs[hang].error and f"({SOFT_LIMIT_S} s)" in jobs[hang].error
    assert jobs[good].status == JobStatus.DONE, jobs[good].error
    assert live_worker.alive()
