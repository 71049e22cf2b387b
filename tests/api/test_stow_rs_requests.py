"""DICOMweb STOW-RS (POST /api/v1/dicomweb/studies/, PS3.18 10.5): the whole request. Its
authentication (an API token only: a session is refused with 401), its Content-Type, its size
bounds and its multipart structure; errors are 4xx with the API's JSON error body and store
nothing. Storing instances: test_stow_rs.py."""

import io

import pytest

from tests.support.stow import (
    BOUNDARY,
    DICOM_TYPE,
    failures,
    multipart,
    shared_dicom,
    stow,
)
from webapp.cases.models import Case

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("content_type", [
    f"multipart/related; type=application/dicom; boundary={BOUNDARY}",  # unquoted, as often sent
    f'Multipart/Related; boundary="{BOUNDARY}"; Type="application/DICOM"',
    f"multipart/related; boundary={BOUNDARY}",  # no type: the parts say what they are
])
def test_the_content_type_as_clients_spell_it(owner, token_client, content_type):
    response = stow(token_client(owner), multipart(shared_dicom(0)), content_type=content_type)
    assert response.status_code == 200, response.content


def test_anonymous_is_refused_with_401(client):
    response = stow(client, multipart(shared_dicom(0)))
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json" and response.json()["detail"]
    assert not Case.objects.exists()


def test_a_session_is_refused_with_401_and_says_to_use_a_token(owner, login):
    """STOW-RS is token-only: a session, with or without its CSRF token, gets a 401 JSON that
    says why (it answered 400 with a valid CSRF token: the token was looked for in a form body
    the multipart/related body is not)."""
    from django.test import Client

    signed_in = login(owner)
    for client in (signed_in, _with_csrf_token(owner)):
        response = stow(client, multipart(shared_dicom(0)), **getattr(client, "csrf_headers", {}))
        assert response.status_code == 401, response.content
        assert response["Content-Type"] == "application/json"
        assert response["WWW-Authenticate"].startswith("Token")
        assert "API token only" in response.json()["detail"]
    anonymous = stow(Client(), multipart(shared_dicom(0)))  # no session: the usual 401
    assert "API token only" not in anonymous.json()["detail"]
    assert not Case.objects.exists()
    # The same session still reads the REST API: only STOW-RS is token-only.
    assert signed_in.get("/api/v1/cases/").status_code == 200


def _with_csrf_token(user):
    """A browser's session: CSRF checks on, with the token from a page it was given."""
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    client.get("/cases/new/")
    client.csrf_headers = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    return client


def test_a_token_needs_no_csrf_token(owner, token_client):
    response = stow(token_client(owner), multipart(shared_dicom(0)))
    assert response.status_code == 200, response.content
    assert Case.objects.count() == 1


@pytest.mark.parametrize("content_type", [
    "multipart/form-data; boundary=x",
    "application/dicom",
    'multipart/related; type="application/dicom+json"; boundary=x',
    "application/octet-stream",
])
def test_wrong_content_type_answers_415(owner, token_client, content_type):
    response = stow(token_client(owner), multipart(shared_dicom(0)), content_type=content_type)
    assert response.status_code == 415, response.content
    assert response["Content-Type"] == "application/json" and response.json()["detail"]
    assert not Case.objects.exists()


def test_too_large_answers_413(owner, token_client, settings):
    settings.MAX_UPLOAD_FILES = 2
    settings.MAX_UPLOAD_FILE_BYTES = 3 * 2**20
    data = shared_dicom(0)
    client = token_client(owner)
    # More bytes than MAX_UPLOAD_FILES x MAX_UPLOAD_FILE_BYTES: refused from its Content-Length.
    huge = multipart(data, data + b"\0" * (6 * 2**20))
    response = stow(client, huge)
    assert response.status_code == 413, response.content
    assert "At most 2 instances" in response.json()["detail"]
    # More parts than MAX_UPLOAD_FILES.
    many = stow(client, multipart(data, data, data))
    assert many.status_code == 413 and "this one has 3 parts" in many.json()["detail"]
    assert not Case.objects.exists()
    # One part over MAX_UPLOAD_FILE_BYTES in a body within the bound: that part fails (A700).
    settings.MAX_UPLOAD_FILE_BYTES = len(data) + 10
    mixed = stow(client, multipart(data, data + b"\0" * 20))
    assert mixed.status_code == 202
    assert [f["reason"] for f in failures(mixed.json())] == [0xA700]
    assert "part 2: the file is larger than the limit" in mixed["Warning"]


def test_the_stream_is_read_no_further_than_the_bound(settings):
    """Whatever the Content-Length said, reading stops past the bound."""
    from rest_framework.exceptions import APIException

    from webapp.api import dicomweb

    settings.MAX_UPLOAD_FILES, settings.MAX_UPLOAD_FILE_BYTES = 1, 1000
    bound = dicomweb.max_body_bytes()

    class Request:
        META = {"CONTENT_TYPE": DICOM_TYPE, "CONTENT_LENGTH": str(bound)}
        stream = io.BytesIO(multipart(b"\0" * (bound + 10)))

    with pytest.raises(APIException) as raised:
        dicomweb.read_parts(Request())
    assert raised.value.status_code == 413
    assert Request.stream.tell() <= bound + 1


@pytest.mark.parametrize("body, detail", [
    (b"", "no body"),
    (multipart(b"DICM", close=False), "closing boundary"),
    (b"--" + BOUNDARY.encode() + b"--\r\n", "no part"),
    (multipart(b"x", boundary="another-boundary"), "no part delimited by the boundary"),
])
def test_a_malformed_body_answers_400(owner, token_client, body, detail):
    response = stow(token_client(owner), body)
    assert response.status_code == 400, response.content
    assert detail in response.json()["detail"]
    assert not Case.objects.exists()


def test_a_missing_boundary_parameter_answers_400(owner, token_client):
    response = stow(token_client(owner), multipart(shared_dicom(0)),
                    content_type='multipart/related; type="application/dicom"')
    assert response.status_code == 400 and "boundary" in response.json()["detail"]


def test_the_warning_header_stays_ascii_and_bounded():
    from webapp.api import dicomweb

    one = dicomweb.warning_header("pacs.example:8443", ['part 1: a "quoted" \\ view\r\nLL é'])
    assert one == '299 pacs.example:8443 "part 1: a \\"quoted\\" \\\\ view LL ?"'
    many = dicomweb.warning_header("h", [f"part {n}: " + "x" * 400 for n in range(1, 51)])
    assert len(many) < dicomweb.WARNING_HEADER_CHARS + 100
    assert many.endswith('more refused parts."') and many.isascii()


def test_the_openapi_schema_says_stow_rs_is_token_only(owner, login):
    schema = login(owner).get("/api/schema/?format=json").json()
    schemes = schema["components"]["securitySchemes"]
    for path in ("/api/v1/dicomweb/studies/", "/api/v1/dicomweb/studies/{study_uid}/"):
        operation = schema["paths"][path]["post"]
        assert "a browser session is refused with 401" in operation["description"]
        used = {name for requirement in operation["security"] for name in requirement}
        assert used and all(schemes[name].get("in") != "cookie" for name in used), used
    # The rest of the API still takes a session.
    cases = schema["paths"]["/api/v1/cases/"]["post"]["security"]
    assert any(schemes[name].get("in") == "cookie" for requirement in cases for name in requirement)
