"""/api/v1/ lists the API's entry points to its users; every other /api/ path answers JSON, never
the site's HTML 404 page: 404 for a signed-in caller, 401 for an anonymous one (as every
endpoint does: which paths exist is not told to strangers)."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

ENTRY_POINTS = {"cases": "/api/v1/cases/", "batches": "/api/v1/batches/",
                "dicomweb_studies": "/api/v1/dicomweb/studies/", "schema": "/api/schema/",
                "docs": "/api/docs/"}
UNKNOWN = ("/api/", "/api/v2/", "/api/v1/nothing/", "/api/v1/cases/not-a-uuid/",
           "/api/v1/cases/00000000-0000-0000-0000-000000000000/images/", "/api/schema/extra")


def test_api_root_lists_the_entry_points_with_a_token(owner, token_client):
    response = token_client(owner).get("/api/v1/")
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response.json() == {name: f"http://testserver{url}" for name, url in ENTRY_POINTS.items()}
    # Each listed URL answers that client (the docs page is for its browser).
    for name in ("cases", "batches", "schema"):
        assert token_client(owner).get(response.json()[name]).status_code == 200, name


def test_api_root_with_a_session(client, owner):
    client.force_login(owner)
    response = client.get("/api/v1/", HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 200 and set(response.json()) == set(ENTRY_POINTS)


def test_api_root_refuses_anonymous_callers_with_json_401(client):
    response = client.get("/api/v1/", HTTP_ACCEPT="text/html,*/*")
    assert response.status_code == 401 and "Location" not in response
    assert response.json()["detail"] and response["WWW-Authenticate"].startswith("Token")


def test_api_root_refuses_a_bad_token(token_client):
    response = token_client().get("/api/v1/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code == 401 and response.json()["detail"]


@pytest.mark.parametrize("url", UNKNOWN)
@pytest.mark.parametrize("method", ["get", "post", "delete", "options"])
def test_unknown_api_paths_answer_json_404_to_signed_in_callers(owner, token_client, url, method):
    response = getattr(token_client(owner), method)(url)
    assert response.status_code == 404, (method, url, response.content[:200])
    assert response["Content-Type"] == "application/json"
    assert "/api/v1/" in response.json()["detail"]


@pytest.mark.parametrize("accept", ["text/html,application/xhtml+xml,*/*;q=0.8", "text/html", "image/png"])
def test_unknown_api_path_with_a_session_is_json_404_whatever_is_accepted(client, owner, accept):
    client.force_login(owner)
    response = client.get("/api/v1/nothing/", HTTP_ACCEPT=accept)
    assert response.status_code == 404 and response.json()["detail"]


@pytest.mark.parametrize("url", UNKNOWN)
def test_unknown_api_paths_answer_json_401_to_anonymous_callers(client, url):
    response = client.get(url, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 401 and "Location" not in response  # not the login page
    assert response.json()["detail"]


def test_a_known_path_without_its_final_slash_says_so(owner, token_client):
    response = token_client(owner).get("/api/v1/cases")
    assert response.status_code == 404
    assert response.json()["detail"] == "Not found. Did you mean /api/v1/cases/ (with a final slash)?"


def test_the_api_root_is_in_the_schema_and_the_catch_all_is_not(owner, token_client):
    paths = token_client(owner).get("/api/schema/?format=json").json()["paths"]
    root = paths["/api/v1/"]["get"]
    assert root["operationId"] == "api_root"
    assert set(root["responses"]) >= {"200", "401", "404"}
    assert not [p for p in paths if "^" in p or "*" in p or "{path}" in p]


def test_pages_outside_the_api_keep_the_html_404(client, owner):
    client.force_login(owner)
    response = client.get("/no-such-page/")
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
    anonymous = Client().get("/no-such-page/")
    assert anonymous.status_code == 404 and anonymous["Content-Type"].startswith("text/html")
