"""Real processes for tests and benchmarks: a ``celery worker`` that is ready once its model is
loaded, gunicorn serving the site, and a throwaway redis-server of our own (restarting it
touches nobody else's queues). No pytest here: a process that does not come up raises
ProcessError, with the tail of its log."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.data import REPO

WORKER_START_TIMEOUT = 240  # torch import + model load on a busy 2-core machine
FAULT_APP = "tests.support.fault_worker"  # the test-only worker entry point with the fault hook


class ProcessError(RuntimeError):
    """A process exited, or did not become ready in time."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_command_environment(folder: Path, port: int, **extra: str) -> dict:
    """The environment of ``scripts/run`` as a newcomer starts it on the embedded defaults, with
    its state (SQLite, the filesystem broker, media, static files) in ``folder``: nothing of the
    caller's DJANGO_, DATABASE_URL or CELERY_ settings leaks in. ``extra`` adds or overrides."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DATABASE_URL", "CELERY_"))}
    env.update({
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "CELERY_BROKER_DIR": str(folder / "broker"),
        "PRIVATE_MEDIA_ROOT": str(folder / "media"),
        "DJANGO_STATIC_ROOT": str(folder / "static"),
        **extra,
    })
    return env


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM (a warm shutdown), then SIGKILL if it is still there after ``timeout``."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_until_serving(url: str, process: subprocess.Popen, log_path: Path, timeout: float,
                       what: str) -> None:
    """Until ``url`` answers over HTTP; fail with the log's tail if ``process`` exits first."""
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ProcessError(f"{what} exited with {process.returncode}:\n"
                               f"{log_path.read_text(errors='replace')[-4000:]}")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:  # not listening yet, or still loading the app
            time.sleep(0.3)
    raise ProcessError(f"{what} did not answer at {url}:\n"
                       f"{log_path.read_text(errors='replace')[-4000:]}")


def start_gunicorn(env: dict, port: int, log_path: Path, *options: str,
                   ready_path: str = "/login/", timeout: float = 60) -> subprocess.Popen:
    """``gunicorn webapp.wsgi`` on 127.0.0.1:``port`` (its own process group), once it answers."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "webapp.wsgi", "--bind", f"127.0.0.1:{port}", *options],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until_serving(f"http://127.0.0.1:{port}{ready_path}", process, log_path, timeout,
                           "gunicorn")
    except ProcessError:
        stop_process(process)
        raise
    return process


class CeleryWorker:
    """A real ``celery -A <app> worker`` (concurrency 1) in its own process group, so that a test
    can SIGKILL the whole worker (main + pool) at once. ``start`` returns once the log of this
    start says " ready." (the consumer) and "loaded model" (the pool process): jobs run at once.

    ``hostname`` may hold ``{generation}``: each start that is not ``same_name`` counts one up."""

    def __init__(self, env: dict, log_path: Path, *, app: str = "workers",
                 hostname: str = "worker-{generation}@%h", options: tuple[str, ...] = (),
                 ready_timeout: float = WORKER_START_TIMEOUT):
        self.env, self.log_path, self.app = env, log_path, app
        self.hostname, self.options, self.ready_timeout = hostname, tuple(options), ready_timeout
        self.process, self.generation, self.started_at = None, 0, None
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_path.write_bytes(b"")

    def start(self, same_name: bool = False) -> "CeleryWorker":
        """A new worker process; ``same_name``: under the previous one's node name, as a node
        restarted after a crash comes back (systemd, docker-compose, scripts/run)."""
        if not same_name or not self.generation:
            self.generation += 1
        self.started_at = time.monotonic()
        command = [sys.executable, "-m", "celery", "-A", self.app, "worker", "--loglevel=INFO",
                   "--concurrency=1", f"--hostname={self.nodename_pattern}", "--without-gossip",
                   "--without-mingle", *self.options]
        self._log_start = self.log_path.stat().st_size
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        self._wait_until_ready()
        return self

    @property
    def nodename_pattern(self) -> str:
        return self.hostname.format(generation=self.generation)

    @property
    def nodename(self) -> str:
        return self.nodename_pattern.replace("%h", socket.gethostname())

    def _wait_until_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_start)  # this start's lines only (same name, same log)
                tail = handle.read().decode(errors="replace")
            if self.process.poll() is not None:
                raise ProcessError(f"the Celery worker exited with {self.process.returncode}:\n"
                                   f"{tail[-3000:]}")
            if " ready." in tail and "loaded model" in tail:
                return
            time.sleep(0.3)
        self.kill_all()
        raise ProcessError(f"the Celery worker was not ready in {self.ready_timeout} s:\n"
                           f"{self.log_text()[-3000:]}")

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def pool_pids(self) -> list[int]:
        pids = []
        for task in Path(f"/proc/{self.pid}/task").glob("*"):
            try:
                pids += [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                pass
        return pids

    def kill_all(self):
        """SIGKILL the whole worker: main process and pool, no warm shutdown, no ack."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self, timeout: float = 30):
        """Warm shutdown (the job in hand finishes), SIGKILL of the group after ``timeout``."""
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_all()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


def fault_celery_worker(env: dict, log_path: Path) -> CeleryWorker:
    """A worker from the test-only entry point (its fault hook on where ``env`` says
    TRIAGE_TEST_FAULTS=1), named ``faults-<pid>-<start>``, without heartbeats."""
    return CeleryWorker(env, log_path, app=FAULT_APP, hostname=f"faults-{os.getpid()}-{{generation}}@%h",
                        options=("--without-heartbeat",))


class OwnRedis:
    """A redis-server on a free loopback port, no persistence: restarting it empties it."""

    def __init__(self, workdir: Path):
        self.port, self.workdir, self.process = free_port(), workdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> "OwnRedis":
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ping():
                return self
            time.sleep(0.1)
        raise ProcessError("own redis-server did not start")

    def ping(self) -> bool:
        import redis

        try:
            return redis.Redis(port=self.port, socket_timeout=1).ping()
        except Exception:
            return False

    def kill(self):
        if self.process and self.process.poll() is None:
            self.process.kill()  # SIGKILL: nothing is saved, everything waiting is gone
            self.process.wait()

    def restart(self):
        self.kill()
        self.start()

    def queue_length(self, queue="cpu") -> int:
        import redis

        return redis.Redis(port=self.port).llen(queue)
