"""Redis restarted (and so emptied: no persistence) while jobs wait: the database is the source
of truth, and the periodic reconciler (a real ``manage.py reconcile_jobs --every`` process) sends
them again. Nothing is forgotten and nothing runs twice."""

import subprocess
import sys

import pytest

from tests.support.connections import process_environment
from tests.support.data import REPO
from tests.support.waiting import wait_for_jobs, wait_until
from webapp.cases.models import Job, JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_redis_restart_loses_waiting_jobs_and_the_reconciler_resends_them(live_worker, own_redis,
                                                                           upload, settings):
    # One long job holds the worker (concurrency 1, prefetch 1); three more wait in Redis.
    [busy] = upload("fault-slow-busy.png")
    waiting = upload("a.png", "b.png", "c.png")
    wait_until(lambda: Job.objects.get(pk=busy).status == JobStatus.RUNNING, 60, what="running")
    assert own_redis.queue_length() >= 2

    own_redis.restart()  # SIGKILL + fresh start: every waiting message is gone
    assert own_redis.queue_length() == 0

    env = process_environment(settings, broker=own_redis.url)
    reconciler = subprocess.Popen(
        [sys.executable, "manage.py", "reconcile_jobs", "--every", "1", "--queued-after", "3"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        jobs = wait_for_jobs([busy, *waiting], timeout=180)
    finally:
        reconciler.terminate()
        output = reconciler.communicate(timeout=30)[0]
    assert all(j.status == JobStatus.DONE for j in jobs.values()), \
        {j.pk: (j.status, j.error) for j in jobs.values()}
    # Each waiting job ran exactly once (one claim), whatever the number of sends.
    assert [jobs[j].attempts for j in waiting] == [1, 1, 1]
    assert "resent" in output and any(f"resent {n} queued" in output for n in (1, 2, 3)), output
    assert live_worker.alive()  # the worker reconnected to the restarted Redis by itself


def test_upload_while_redis_is_down_is_stored_and_sent_once_it_is_back(live_worker, own_redis,
                                                                       upload):
    """The upload commits without the broker (the job waits in the database, no error page);
    the reconciler sends it when Redis is back."""
    from datetime import timedelta

    from webapp.cases.services.reconcile import reconcile_jobs

    own_redis.kill()
    try:
        [job_id] = upload("while-redis-down.png")  # asserts a redirect to the case, not a 500
        assert Job.objects.get(pk=job_id).status == JobStatus.QUEUED
        report = reconcile_jobs(queued_after=timedelta(0))  # broker still down: retried later
        assert job_id in report.send_failed
    finally:
        own_redis.start()
    report = reconcile_jobs(queued_after=timedelta(0))
    assert job_id in report.resent_queued
    job = wait_for_jobs([job_id], timeout=120)[job_id]
    assert job.status == JobStatus.DONE and job.attempts == 1
