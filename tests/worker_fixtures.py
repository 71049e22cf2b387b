"""The real Celery worker process fixture, shared by tests/e2e and tests/api (registered once, in
tests/conftest.py through ``pytest_plugins``, so that one worker serves a whole session)."""

import os
import subprocess
import sys
import time
from urllib.parse import quote

import pytest

from tests.conftest import ARTIFACTS, REPO

WORKER_START_TIMEOUT = 240  # torch import + model load on a busy 2-core machine


def _database_url(db: dict) -> str:
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real ``celery -A workers worker`` against the real Redis and the pytest-django test
    database on PostgreSQL: no eager mode, no mocks. It inherits the environment (so
    DATABASE_URL / CELERY_BROKER_URL / PRIVATE_MEDIA_ROOT overrides reach it)."""
    from django.conf import settings

    from webapp.celery_app import app

    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("the end-to-end tests need PostgreSQL (DATABASE_URL)")
    app.control.purge()  # jobs left in the test queue by an interrupted run
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / "celery-worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "DATABASE_URL": _database_url(db),  # the test database pytest-django created
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "PRIVATE_MEDIA_ROOT": str(settings.PRIVATE_MEDIA_ROOT),
        "INFERENCE_THREADS": os.environ.get("INFERENCE_THREADS", "2"),
    }
    command = [sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel=INFO",
               "--concurrency=1", f"--hostname=e2e-{os.getpid()}@%h", "--without-gossip",
               "--without-mingle"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_ready(process, log_path)
        yield process
    finally:
        process.terminate()  # warm shutdown: finishes the job in hand
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_until_ready(process, log_path):
    deadline = time.monotonic() + WORKER_START_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited with {process.returncode}:\n{text[-3000:]}")
        # "ready." from the consumer, "loaded model" from the pool process: jobs run at once.
        if " ready." in text and "loaded model" in text:
            return
        time.sleep(0.5)
    pytest.fail(f"the Celery worker was not ready in {WORKER_START_TIMEOUT} s:\n"
                f"{log_path.read_text(errors='replace')[-3000:]}")


@pytest.fixture
def wait_for_case():
    """Poll the status view, as the page does, until every job has finished."""
    def wait(client, case_id, timeout=120):
        from django.urls import reverse

        deadline = time.monotonic() + timeout
        while True:
            payload = client.get(reverse("cases:status", args=[case_id])).json()
            if payload["status"] in ("done", "failed"):
                return payload
            if time.monotonic() > deadline:
                pytest.fail(f"case {case_id} still {payload['status']} after {timeout} s")
            time.sleep(0.25)
    return wait
