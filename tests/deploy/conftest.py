"""Fixtures of the metrics tests (test_metrics.py, test_metrics_processes.py)."""

import uuid

import pytest


@pytest.fixture
def private_queue(settings):
    """The web sends jobs to a queue of this test's own: no worker of another test takes them,
    and the count read back is exactly what was sent. Emptied afterwards."""
    from webapp.celery_app import app

    name = f"metrics-test-{uuid.uuid4().hex[:8]}"
    settings.INFERENCE_QUEUE = name
    yield name
    with app.connection_for_write() as connection:
        connection.default_channel.queue_purge(name)
