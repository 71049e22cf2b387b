"""Through a real worker: the files of issue 21, already stored (a stored copy replaced after the
upload check, or stored before the limits existed), fail their jobs with the reason, quickly,
with no worker process lost; the worker reads through the same check as the uploads."""

import time

import pytest
from django.db import transaction

from tests.bad_inputs import hostile
from tests.support.factories import CaseFactory, UploadFactory
from tests.support.waiting import wait_for_jobs
from webapp.cases.models import JobStatus
from webapp.cases.storage import private_storage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

STORED = [  # (bytes, what the job's reason says)
    (hostile.png16(8192), "8192 x 8192"),
    (hostile.deflated_bomb(150), "inflates to more than"),
    (hostile.many_scan_jpeg(8000), "8000 scans"),
    (hostile.many_scan_jpeg_dicom(8000), "8000 scans"),
]


def test_hostile_files_reaching_the_worker_fail_with_their_reasons(live_worker, owner):
    main_pid, pool_before = live_worker.pid, live_worker.pool_pids()
    with transaction.atomic():
        case = CaseFactory(owner=owner, uploads=UploadFactory.build_batch(len(STORED), extension="png"),
                           client_address="10.0.0.5")
        images = list(case.images.order_by("position"))
        for image, (data, _) in zip(images, STORED):
            with private_storage.open(image.original.name, "wb") as handle:
                handle.write(data)
    started = time.monotonic()
    jobs = wait_for_jobs([i.job.pk for i in images], timeout=180)
    for image, (_, reason) in zip(images, STORED):
        job = jobs[image.job.pk]
        assert job.status == JobStatus.FAILED and job.attempts == 1, (reason, job.error)
        assert reason in job.error, job.error
    assert time.monotonic() - started < 60  # four refusals, not minutes of decoding
    assert live_worker.pid == main_pid and live_worker.pool_pids() == pool_before  # no crash
