"""A worker killed with SIGKILL in the middle of a job: the job is delivered again and finishes
once, with one set of result files."""

import os
import signal

import pytest

from tests.support.waiting import wait_for_jobs, wait_until
from webapp.cases.models import Job, JobStatus
from webapp.cases.storage import private_storage

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def result_files(job):
    folder = f"cases/{job.image.case_id}/{job.image_id}"
    return sorted(private_storage.listdir(folder)[1])


def assert_done_once(job_id, attempts):
    job = Job.objects.select_related("image").get(pk=job_id)
    assert job.status == JobStatus.DONE, job.error
    assert job.attempts == attempts
    files = result_files(job)
    # original + preview + exactly one mask and one overlay, both of the run that won
    assert len([f for f in files if f.startswith("mask-")]) == 1, files
    assert len([f for f in files if f.startswith("overlay-")]) == 1, files
    assert job.mask.name.endswith(f"mask-{job.run_token[:12]}.png")
    return job


def test_pool_process_sigkilled_mid_job_is_redelivered_and_finishes_once(live_worker, upload):
    [job_id] = upload("fault-slow-1.png")
    wait_until(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, 60, what="running")
    pool = live_worker.pool_pids()
    assert pool, "no pool process found"
    for pid in pool:
        os.kill(pid, signal.SIGKILL)  # the process running the job dies, no clean-up at all

    wait_for_jobs([job_id], timeout=120)
    assert_done_once(job_id, attempts=2)  # run 1 died, run 2 (the redelivery) finished
    assert live_worker.alive()
    assert "WorkerLostError" in live_worker.log_text() or "exited with" in live_worker.log_text()


def test_whole_worker_sigkilled_and_restarted_finishes_its_job_within_60_s(live_worker, upload):
    """Main process and pool killed at once, then the node restarted under its own name (as
    systemd, docker-compose and scripts/run bring it back), nothing else running: Redis would
    hand the unacknowledged message back only after its visibility timeout (an hour). The
    worker knows the jobs running under its name are orphans of its previous life and sends
    them again at start-up."""
    import time

    [job_id] = upload("fault-slow-3.png")
    wait_until(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, 60, what="running")
    name = Job.objects.get(pk=job_id).worker
    assert name == live_worker.nodename
    live_worker.kill_all()
    assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING  # stuck as far as the DB knows

    live_worker.start(same_name=True)
    wait_for_jobs([job_id], timeout=max(1.0, 60 - (time.monotonic() - live_worker.started_at)))
    assert time.monotonic() - live_worker.started_at <= 60
    assert_done_once(job_id, attempts=2)
    assert f"resent 1 job(s) its previous run left running: {job_id}" in live_worker.log_text()


def test_whole_worker_sigkilled_mid_job_is_resent_by_the_reconciler(live_worker, upload):
    """Main process and pool killed at once, and the node never comes back (a new worker under
    another name takes over): the reconciler sees a run older than the hard time limit and sends
    the job again; the other worker finishes it, once."""
    from datetime import timedelta

    from webapp.cases.services.reconcile import reconcile_jobs

    [job_id] = upload("fault-slow-2.png")
    wait_until(lambda: Job.objects.get(pk=job_id).status == JobStatus.RUNNING, 60, what="running")
    live_worker.kill_all()
    assert Job.objects.get(pk=job_id).status == JobStatus.RUNNING  # stuck as far as the DB knows

    live_worker.start()  # a fresh worker: nothing in the queue for it
    report = reconcile_jobs(running_after=timedelta(seconds=0))
    assert job_id in report.resent_running
    wait_for_jobs([job_id], timeout=120)
    assert_done_once(job_id, attempts=2)
    # A second round (or a late duplicate from Redis) changes nothing: the job is finished.
    assert job_id not in reconcile_jobs(queued_after=timedelta(0),
                                        running_after=timedelta(0)).resent_running
