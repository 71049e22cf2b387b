"""The batched GPU worker killed with SIGKILL in the middle of a batch (every job of it claimed,
none stored): each job is delivered again and ends done exactly once, with one set of result
files. A real ``celery -A tests.support.fault_worker worker -Q gpu`` on the CPU (the batch path
needs no CUDA: ``-Q gpu`` is what makes a worker batch), its own Redis; the web's
``analyse_image`` messages, sent by the real upload view to the gpu queue, are batched by the
worker. A ``fault-slow`` image makes the batch's forward pass wait, after the claims."""

import os
import signal
import time

import pytest

from tests.faults.test_worker_crash import assert_done_once, result_files
from tests.support.connections import process_environment, use_broker
from tests.support.data import ARTIFACTS
from tests.support.processes import FAULT_APP, CeleryWorker, OwnRedis
from tests.support.waiting import wait_for_jobs, wait_until
from webapp.cases.models import Job, JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

BATCH = 4
NAMES = ["fault-slow-batch.png", "batch-2.png", "batch-3.png", "batch-4.png"]


@pytest.fixture(scope="module")
def batch_redis(tmp_path_factory):
    # Its own Redis: a session's other fault worker (no -Q) would consume "gpu" on a CUDA machine.
    server = OwnRedis(tmp_path_factory.mktemp("batch-redis")).start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture(scope="module")
def gpu_worker(django_db_setup, django_db_blocker, batch_redis):
    from django.conf import settings

    env = process_environment(
        settings, broker=batch_redis.url, INFERENCE_QUEUE="gpu", GPU_BATCH_SIZE=str(BATCH),
        GPU_BATCH_WAIT_MS="2000",  # all of an upload's jobs in one batch, however slow the send
        INFERENCE_MAX_ATTEMPTS="3", TRIAGE_TEST_FAULTS="1", TRIAGE_TEST_SLOW_S="6")
    worker = CeleryWorker(env, ARTIFACTS / "faults-gpu-batch-worker.log", app=FAULT_APP,
                          hostname=f"gpu-batch-{os.getpid()}-{{generation}}@%h",
                          options=("--without-heartbeat", "-Q", "gpu"))
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def batch_worker(gpu_worker, batch_redis, settings):
    """The gpu worker (restarted if an earlier test killed it); this process's uploads go to
    the gpu queue of its Redis."""
    if not gpu_worker.alive():
        gpu_worker.start()
    settings.INFERENCE_QUEUE = "gpu"
    previous = use_broker(batch_redis.url)
    try:
        yield gpu_worker
    finally:
        use_broker(previous)


def wait_until_the_batch_is_claimed(job_ids, worker):
    """Every job running, attempt 1, under this worker: claimed together, one batch (a worker
    running them one at a time, concurrency 1, never has two running)."""
    def claimed():
        rows = list(Job.objects.filter(pk__in=job_ids).values_list("status", "attempts", "worker"))
        return rows == [(JobStatus.RUNNING, 1, worker.nodename)] * len(job_ids)
    wait_until(claimed, 60, what="the batch's claims")


def assert_every_job_done_once(job_ids, worker, attempts=2):
    wait_for_jobs(job_ids, timeout=180)
    finished = {job_id: assert_done_once(job_id, attempts) for job_id in job_ids}
    time.sleep(3)  # a late duplicate would now claim, store or complete again: none does
    for job_id, job in finished.items():
        again = Job.objects.select_related("image").get(pk=job_id)
        assert (again.status, again.attempts, again.run_token, again.finished_at) == (
            JobStatus.DONE, attempts, job.run_token, job.finished_at)
        assert result_files(again) == result_files(job)
    assert worker.alive()


def test_pool_process_killed_mid_batch_requeues_the_batch_and_each_job_finishes_once(
        batch_worker, upload):
    job_ids = upload(*NAMES)
    assert len(job_ids) == BATCH
    wait_until_the_batch_is_claimed(job_ids, batch_worker)
    pool = batch_worker.pool_pids()
    assert pool, "no pool process found"
    for pid in pool:
        os.kill(pid, signal.SIGKILL)  # the process running the batch dies, no clean-up at all

    assert_every_job_done_once(job_ids, batch_worker)
    log = batch_worker.log_text()
    assert "batching the gpu queue's jobs: up to 4 image(s)" in log
    assert "lost with its pool process" in log  # handed back to the queue, not left unacked


def test_whole_worker_killed_mid_batch_and_restarted_finishes_each_job_once(batch_worker, upload):
    """Main process and pool killed at once: Redis keeps the batch's messages unacknowledged
    (for its visibility timeout), the node comes back under its own name and sends again the
    jobs its previous life left running; they are batched again and each finishes once."""
    job_ids = upload(*NAMES)
    wait_until_the_batch_is_claimed(job_ids, batch_worker)
    batch_worker.kill_all()
    assert set(Job.objects.filter(pk__in=job_ids).values_list("status", flat=True)) == {
        JobStatus.RUNNING}

    batch_worker.start(same_name=True)
    assert_every_job_done_once(job_ids, batch_worker)
    line = next(line for line in batch_worker.log_text().splitlines()
                if f"resent {BATCH} job(s) its previous run left running: " in line)
    assert sorted(map(int, line.rsplit(": ", 1)[1].split(", "))) == sorted(job_ids)


def test_batch_after_the_crashes_is_one_forward_pass_for_fresh_jobs(batch_worker, upload):
    """Fresh jobs (none of them lost before) still go through in one batch, attempt 1 each."""
    job_ids = upload(*[name.replace("fault-slow-", "") for name in NAMES])
    wait_for_jobs(job_ids, timeout=120)
    for job_id in job_ids:
        assert_done_once(job_id, attempts=1)
    log = batch_worker.log_text()
    assert f"batch of {BATCH} job(s) by {batch_worker.nodename}: " + ", ".join(map(str, job_ids)) in log
