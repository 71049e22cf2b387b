"""pytest plugin (tests/conftest.py registers it): real processes for the fault and bad-input
suites (tests/faults, tests/bad_inputs), shared by both, one of each per session: a
redis-server of our own, a TCP proxy in front of PostgreSQL that the tests can cut (the
database "unreachable for a moment"), and a real Celery worker that reaches the test database
through that proxy, started from the test-only entry point tests.support.fault_worker with its
fault hook on (file names starting with fault-slow/-hang/-crash). No mocks: SIGKILL, Redis
restarts and connection cuts are the real thing."""

import pytest

from tests.support.connections import database_url, process_environment, use_broker
from tests.support.data import ARTIFACTS
from tests.support.processes import OwnRedis, fault_celery_worker
from tests.support.proxy import TcpProxy

SLOW_S = 5  # a fault-slow job lasts this much longer than a normal one
SOFT_LIMIT_S, HARD_LIMIT_S = 12, 20  # the fault worker's time limits
MAX_ATTEMPTS = 2


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
    env = process_environment(
        settings, database=database_url(db, "127.0.0.1", db_proxy.port),  # through the proxy
        broker=own_redis.url,
        INFERENCE_SOFT_TIME_LIMIT=str(SOFT_LIMIT_S), INFERENCE_HARD_TIME_LIMIT=str(HARD_LIMIT_S),
        INFERENCE_MAX_ATTEMPTS=str(MAX_ATTEMPTS), TRIAGE_TEST_FAULTS="1", TRIAGE_TEST_SLOW_S=str(SLOW_S))
    worker = fault_celery_worker(env, ARTIFACTS / "faults-worker.log")
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
