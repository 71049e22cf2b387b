"""Real processes for the fault and bad-input suites (tests/faults, tests/bad_inputs): a
throwaway redis-server of our own (restarting it touches nobody else's queues), a TCP proxy in
front of PostgreSQL that the tests can cut (the database "unreachable for a moment"), and a
real ``celery -A workers worker`` that reaches the test database through that proxy, with the
test-only fault hooks on (TRIAGE_TEST_FAULTS; file names starting with fault-slow/-hang/-crash).

The fixtures are session-scoped and imported by tests/conftest.py, so both suites share one
worker. No mocks: SIGKILL, Redis restarts and connection cuts are the real thing."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"
WORKER_START_TIMEOUT = 240
SLOW_S = 5  # a fault-slow job lasts this much longer than a normal one
SOFT_LIMIT_S, HARD_LIMIT_S = 12, 20  # the fault worker's time limits
MAX_ATTEMPTS = 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OwnRedis:
    """A redis-server on a free loopback port, no persistence: restarting it empties it."""

    def __init__(self, workdir: Path):
        self.port, self.workdir, self.process = free_port(), workdir, None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ping():
                return
            time.sleep(0.1)
        raise RuntimeError("own redis-server did not start")

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


class TcpProxy:
    """127.0.0.1:<port> -> target. ``down()`` cuts every connection and refuses new ones."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self):
        listener, self._listener = self._listener, None
        if listener:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
            except OSError:
                pass
            listener.close()
        with self._lock:
            for sock in list(self._sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def use_broker(url: str | None) -> str | None:
    """Point this (test) process's Celery publishing at another broker (None: back to the
    configured one). Celery reads CELERY_BROKER_WRITE_URL from the environment before its
    settings; the pools are dropped so that the next send connects anew."""
    from webapp.celery_app import app

    previous = os.environ.get("CELERY_BROKER_WRITE_URL")
    if url is None:
        os.environ.pop("CELERY_BROKER_WRITE_URL", None)
    else:
        os.environ["CELERY_BROKER_WRITE_URL"] = url
    from kombu import pools

    pools.reset()  # closes and forgets every producer/connection pool, so none is reused
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    return previous


def database_url(db: dict, host: str | None = None, port: int | None = None) -> str:
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return (f"postgres://{auth}@{host or db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}"
            f"/{db['NAME']}")


class FaultWorker:
    def __init__(self, env: dict, log_path: Path):
        self.env, self.log_path, self.process, self.generation = env, log_path, None, 0

    def start(self, same_name: bool = False):
        """A new worker process; ``same_name``: under the previous one's node name, as a node
        restarted after a crash comes back (systemd, docker-compose, scripts/run)."""
        if not same_name or not self.generation:
            self.generation += 1
        self.started_at = time.monotonic()
        command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel=INFO",
                   "--concurrency=1", f"--hostname={self.nodename_pattern}",
                   "--without-gossip", "--without-mingle", "--without-heartbeat"]
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")
        # Its own process group: a test can SIGKILL the whole worker (main + pool) at once.
        self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        self._wait_until_ready()

    @property
    def nodename_pattern(self) -> str:
        return f"faults-{os.getpid()}-{self.generation}@%h"

    @property
    def nodename(self) -> str:
        return self.nodename_pattern.replace("%h", socket.gethostname())

    def _wait_until_ready(self):
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_start)  # this start's lines only (same name, same log)
                tail = handle.read().decode(errors="replace")
            if self.process.poll() is not None:
                pytest.fail(f"the fault worker exited with {self.process.returncode}:\n{tail[-3000:]}")
            if " ready." in tail and "loaded model" in tail:
                return
            time.sleep(0.3)
        pytest.fail(f"the fault worker was not ready:\n{self.log_path.read_text(errors='replace')[-3000:]}")

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

    def stop(self):
        if not self.alive():
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill_all()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="session")
def own_redis(tmp_path_factory):
    redis_server = OwnRedis(tmp_path_factory.mktemp("own-redis"))
    redis_server.start()
    try:
        yield redis_server
    finally:
        redis_server.kill()


@pytest.fixture(scope="session")
def db_proxy(django_db_setup):
    from django.conf import settings

    db = settings.DATABASES["default"]
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.up()
    yield proxy
    proxy.down()


@pytest.fixture(scope="session")
def fault_worker(django_db_setup, django_db_blocker, own_redis, db_proxy):
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("the fault tests need PostgreSQL (DATABASE_URL)")
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "faults-worker.log"
    log_path.write_bytes(b"")
    env = {
        **{k: v for k, v in os.environ.items() if k != "CELERY_BROKER_WRITE_URL"},
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "DATABASE_URL": database_url(db, "127.0.0.1", db_proxy.port),  # through the proxy
        "CELERY_BROKER_URL": own_redis.url,
        "PRIVATE_MEDIA_ROOT": str(settings.PRIVATE_MEDIA_ROOT),
        "INFERENCE_THREADS": os.environ.get("INFERENCE_THREADS", "2"),
        "INFERENCE_SOFT_TIME_LIMIT": str(SOFT_LIMIT_S),
        "INFERENCE_HARD_TIME_LIMIT": str(HARD_LIMIT_S),
        "INFERENCE_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
        "TRIAGE_TEST_FAULTS": "1",
        "TRIAGE_TEST_SLOW_S": str(SLOW_S),
    }
    worker = FaultWorker(env, log_path)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop()


@pytest.fixture
def live_worker(fault_worker, own_redis, settings):
    """The fault worker, restarted if an earlier test killed it. During the test, jobs sent by
    this process go to our own Redis, and may fail at most MAX_ATTEMPTS times, as in the worker."""
    if not fault_worker.alive():
        fault_worker.start()
    settings.INFERENCE_MAX_ATTEMPTS = MAX_ATTEMPTS
    previous = use_broker(own_redis.url)
    try:
        yield fault_worker
    finally:
        use_broker(previous)


def wait_for_jobs(job_ids, timeout=120, poll=0.25):
    """Poll the database (the source of truth) until every job is done or failed."""
    from webapp.cases.models import TERMINAL_STATUSES, Job

    deadline = time.monotonic() + timeout
    while True:
        jobs = {j.pk: j for j in Job.objects.filter(pk__in=list(job_ids))}
        if len(jobs) == len(set(job_ids)) and all(j.status in TERMINAL_STATUSES for j in jobs.values()):
            return jobs
        if time.monotonic() > deadline:
            pytest.fail("jobs not finished in time: "
                        + ", ".join(f"{j.pk}={j.status}/{j.attempts}" for j in jobs.values()))
        time.sleep(poll)


def wait_until(predicate, timeout=60, poll=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)
