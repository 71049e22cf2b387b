"""The database unreachable for a moment (a TCP proxy in front of PostgreSQL is cut): the web
answers 503 with a clear page, the worker retries, and nothing uploaded before is lost."""

import time

import pytest
from django.db import connections
from django.test import Client
from django.urls import reverse

from tests.support.factories import CaseFactory
from tests.support.waiting import wait_for_jobs
from webapp.cases.models import Case, JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def web_through_proxy(db_proxy):
    """This test process's database connection goes through the proxy too."""
    connection = connections["default"]
    saved = dict(connection.settings_dict)
    connection.close()
    connection.settings_dict.update(HOST="127.0.0.1", PORT=str(db_proxy.port))
    try:
        yield db_proxy
    finally:
        if db_proxy._listener is None:
            db_proxy.up()
        connection.close()
        connection.settings_dict.update(HOST=saved["HOST"], PORT=saved["PORT"])


def test_web_answers_503_while_the_database_is_down_and_loses_nothing(web_through_proxy, owner):
    proxy = web_through_proxy
    case = CaseFactory(owner=owner, extension="png", client_address="10.0.0.7")  # before the outage
    client = Client(REMOTE_ADDR="10.0.0.7", raise_request_exception=False)
    client.force_login(owner)
    assert client.get(reverse("cases:detail", args=[case.pk])).status_code == 200

    proxy.down()
    connections["default"].close()
    try:
        page = client.get(reverse("cases:list"))
        assert page.status_code == 503 and page["Retry-After"]
        assert "briefly unavailable" in page.content.decode()
        assert "Nothing you uploaded before is lost" in page.content.decode()
        status = client.get(reverse("cases:status", args=[case.pk]))
        assert status.status_code == 503 and status.json()["error"] == "service_unavailable"
        posted = client.post(reverse("cases:upload"), {"images": []})
        assert posted.status_code == 503
        assert client.get(reverse("login")).status_code in (200, 503)  # never a 500
    finally:
        proxy.up()

    time.sleep(0.2)
    connections["default"].close()
    assert client.get(reverse("cases:detail", args=[case.pk])).status_code == 200
    assert Case.objects.filter(pk=case.pk).exists() and case.images.count() == 1


def test_worker_retries_while_the_database_is_down(live_worker, db_proxy, owner):
    from django.db import transaction

    before = CaseFactory(owner=owner, extension="png",
                         client_address="10.0.0.8")  # before the outage, not sent
    db_proxy.down()  # the worker's connections are cut; this test process is not behind the proxy
    try:
        with transaction.atomic():
            case = CaseFactory(owner=owner, extension="jpg",
                               client_address="10.0.0.8")  # sent on commit
        deadline = time.monotonic() + 60
        while "Retry in" not in live_worker.log_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "Retry in" in live_worker.log_text()  # the task met the outage and retries
    finally:
        db_proxy.up()
    job_id = case.images.get().job.pk
    job = wait_for_jobs([job_id], timeout=150)[job_id]
    assert job.status == JobStatus.DONE, job.error
    assert Case.objects.filter(pk=before.pk).exists()  # nothing uploaded before is lost
    assert live_worker.alive()
