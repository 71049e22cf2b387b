"""SIGTERM to a worker's whole process group, as docker stop, systemd (KillMode=control-group)
or a supervisor's os.killpg sends it (issue 21): a warm shutdown, exit code 0 within a bounded
time, the job in hand finished, no process of the group left behind (no zombie, no restarted
pool process). Run on the embedded defaults (SQLite + kombu's filesystem broker), where the pool
shares locked queues with the main process and a pool process killed by the signal used to leave
the worker hanging for ever."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.support.data import ARTIFACTS, subset_image
from tests.support.embedded import EmbeddedSite
from tests.support.processes import CeleryWorker
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PASSWORD = "shutdown-test-password-1"
STOP_WITHIN_S = 60  # torch's interpreter exit on a busy 2-core machine; it was "never"


class EarlyWorker(CeleryWorker):
    """``start`` returns as soon as the consumer is ready: the pool process may still be loading
    the model."""

    def _wait_until_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline and self.process.poll() is None:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_start)
                if b" ready." in handle.read():
                    return
            time.sleep(0.05)
        raise AssertionError(f"the worker did not start:\n{self.log_text()[-3000:]}")


def group_members(pgid: int) -> list[str]:
    """'pid state' of every process in group ``pgid``, zombies included (whoever reaps them)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
        if int(fields[2]) == pgid:
            members.append(f"{stat.parent.name} {fields[0]}")
    return members


def term_group_and_wait(worker: CeleryWorker) -> float:
    """SIGTERM to the worker's process group; the seconds it took to exit. Fails (after
    SIGKILLing the group) if it does not exit in time, or leaves a process of its group."""
    started = time.monotonic()
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        code = worker.process.wait(timeout=STOP_WITHIN_S)
    except subprocess.TimeoutExpired:
        left = group_members(worker.pid)
        worker.kill_all()
        pytest.fail(f"no exit {STOP_WITHIN_S} s after SIGTERM; group: {left}\n"
                    f"{worker.log_text()[-3000:]}")
    elapsed = time.monotonic() - started
    wait_until(lambda: not group_members(worker.pid), 5, 0.1, "the pool processes to be gone")
    assert code == 0, worker.log_text()[-3000:]
    log = worker.log_text()[worker._log_start:]
    assert "Warm shutdown" in log
    assert "exited with 'signal 15" not in log, log[-3000:]  # no pool process died of it
    return elapsed


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    ARTIFACTS.mkdir(exist_ok=True)
    embedded = EmbeddedSite(tmp_path_factory.mktemp("shutdown"), faults=True)
    embedded.create_user("clinician", PASSWORD)
    embedded.start_web(ARTIFACTS / "shutdown-web.log")
    yield embedded
    embedded.stop()


def test_term_to_the_group_of_an_idle_worker_exits_cleanly(site):
    """Right after start (the pool process sending its first message, the race that hung) and
    while the pool process may still be loading the model."""
    worker = site.worker(ARTIFACTS / "shutdown-idle-worker.log")
    for _ in range(3):
        worker.start()
        term_group_and_wait(worker)
    early = EarlyWorker(worker.env, ARTIFACTS / "shutdown-loading-worker.log", app=worker.app,
                        hostname="shutdown-loading-{generation}@%h", options=worker.options)
    for _ in range(2):
        early.start()
        term_group_and_wait(early)


JOB_ROWS = ("SELECT j.status, j.attempts, j.error FROM cases_job j JOIN cases_caseimage i "
            "ON i.id = j.image_id WHERE i.case_id = ?")


def worker_with_a_running_job(site, name: str, slow_s: int) -> tuple[CeleryWorker, str]:
    """A started worker whose one pool process is running the job of a new case (the fault hook
    makes it last ``slow_s`` seconds more); the case's id."""
    worker = site.worker(ARTIFACTS / f"shutdown-{name}-worker.log")
    worker.env = {**worker.env, "TRIAGE_TEST_SLOW_S": str(slow_s)}
    worker.start()
    session = site.login("clinician", PASSWORD)
    case_id = site.upload(session, [(f"fault-slow-{name}.png", subset_image("png").read_bytes())])
    wait_until(lambda: site.query(JOB_ROWS, case_id.replace("-", ""))[0][0] == "running", 90, 0.2,
               "the job to run")
    return worker, case_id


def test_term_to_the_group_mid_job_finishes_the_job_then_exits_cleanly(site):
    worker, case_id = worker_with_a_running_job(site, "job", 8)
    term_group_and_wait(worker)
    # The warm shutdown let the job in hand finish, in this worker's life, at the first attempt.
    assert site.query(JOB_ROWS, case_id.replace("-", "")) == [("done", 1, "")]


def test_cold_shutdown_mid_job_stops_the_pool_at_once(site):
    """SIGQUIT to the main process (a cold shutdown): the pool process running a long job, which
    ignores SIGTERM now, is SIGKILLed rather than left to finish it; the job goes back to the
    queue (here: the worker's next start sends it again, its orphan)."""
    worker, case_id = worker_with_a_running_job(site, "cold", 300)
    os.kill(worker.pid, signal.SIGQUIT)
    try:
        worker.process.wait(timeout=STOP_WITHIN_S)  # not the 300 s the job would take
    except subprocess.TimeoutExpired:
        worker.kill_all()
        pytest.fail(f"a cold shutdown waited for the job:\n{worker.log_text()[-3000:]}")
    wait_until(lambda: not group_members(worker.pid), 5, 0.1, "the pool processes to be gone")
    [(status, _, _)] = site.query(JOB_ROWS, case_id.replace("-", ""))
    assert status == "running"  # neither finished nor failed: sent again at the next start
