"""Every answer to a signed-in user (a session or an API token) says ``Cache-Control: private,
no-store``: the case page, its report, the worklist and its JSON, the audit log, the API's
JSON and files, so that a shared workstation's browser keeps none of it after log-out and no
proxy stores it. Static files are left alone."""

import pytest
from django.contrib.staticfiles import finders

from tests.support.factories import CaseFactory
from tests.support.stubs import StubPredictor

pytestmark = pytest.mark.django_db


def directives(response) -> set[str]:
    return {d.strip().lower() for d in response.get("Cache-Control", "").split(",") if d.strip()}


@pytest.fixture
def case(owner):
    return CaseFactory(owner=owner, predictor=StubPredictor())


def page_urls(case) -> list[str]:
    image = case.images.get()
    return ["/cases/", "/cases/worklist.json", f"/cases/{case.pk}/", f"/cases/{case.pk}/report/",
            f"/cases/{case.pk}/status.json", f"/cases/{case.pk}/images/{image.pk}/overlay.png",
            "/audit/", "/cases/new/", "/cases/model/"]


def api_urls(case) -> list[str]:
    image = case.images.get()
    return ["/api/v1/", "/api/v1/cases/", f"/api/v1/cases/{case.pk}/",
            f"/api/v1/cases/{case.pk}/images/{image.pk}/",
            f"/api/v1/cases/{case.pk}/images/{image.pk}/mask/", "/api/v1/batches/",
            f"/api/v1/cases/{case.pk}/images/{image.pk}/reviews/"]


def test_pages_with_patient_data_are_private_and_not_stored(login, owner, case):
    client = login(owner)
    for url in page_urls(case):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        assert {"private", "no-store"} <= directives(response), (url, response.get("Cache-Control"))
        assert "public" not in directives(response)


def test_api_answers_are_private_and_not_stored_with_a_token_or_a_session(
        token_client, login, owner, case):
    for client in (token_client(owner), login(owner)):
        for url in api_urls(case):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            assert {"private", "no-store"} <= directives(response), (url, response.get("Cache-Control"))


def test_errors_to_a_signed_in_user_are_not_stored_either(login, owner):
    response = login(owner).get("/cases/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404 and {"private", "no-store"} <= directives(response)


def test_static_files_are_left_alone(login, owner, settings):
    assert finders.find("css/site.css")
    response = login(owner).get(settings.STATIC_URL + "css/site.css")
    assert response.status_code == 200
    assert "no-store" not in directives(response) and "private" not in directives(response)
