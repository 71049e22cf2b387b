"""pytest plugin (tests/conftest.py registers it): the real Celery worker process shared by
tests/e2e and tests/api (one worker per session), and waiting for a case through its status
view."""

import pytest

from tests.support.connections import process_environment
from tests.support.data import ARTIFACTS
from tests.support.processes import CeleryWorker
from tests.support.waiting import wait_for_case as _wait_for_case


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real ``celery -A workers worker`` against the real Redis and the pytest-django test
    database on PostgreSQL: no eager mode, no mocks. It inherits the environment (so
    DATABASE_URL / CELERY_BROKER_URL / PRIVATE_MEDIA_ROOT overrides reach it)."""
    import os

    from django.conf import settings

    from webapp.celery_app import app

    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("the end-to-end tests need PostgreSQL (DATABASE_URL)")
    app.control.purge()  # jobs left in the test queue by an interrupted run
    worker = CeleryWorker(process_environment(settings), ARTIFACTS / "celery-worker.log",
                          hostname=f"e2e-{os.getpid()}@%h")
    worker.start()
    try:
        yield worker.process
    finally:
        worker.stop()  # warm shutdown: finishes the job in hand


@pytest.fixture
def wait_for_case():
    """Poll the status view, as the page does, until every job has finished."""
    return _wait_for_case
