"""POST/GET cases and batches: idempotency, validation errors (4xx with reasons, nothing stored),
filters, pagination, batch progress, throttling, audit rows, tokens, schema and docs."""

import io

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image

from webapp.audit.models import AuditEvent
from webapp.cases.models import Case, CaseImage

pytestmark = pytest.mark.django_db

IMAGE_FIELDS = {"status", "probability", "positive", "area_fraction", "area_cm2", "model_version",
                "backend", "error", "mask_url", "overlay_url"}


def test_post_answers_201_with_the_case(owner, token_client, xray_file):
    response = token_client(owner).post("/api/v1/cases/", {"images": [xray_file("dcm"), xray_file("png")],
                                                           "client_reference": "ward-7/42"},
                                        format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued" and body["client_reference"] == "ward-7/42"
    assert response["Location"].endswith(f"/api/v1/cases/{body['id']}/")
    assert [i["source_format"] for i in body["images"]] == ["dicom", "png"]
    for image in body["images"]:
        assert IMAGE_FIELDS <= set(image)
        assert image["status"] == "queued" and image["mask_url"] is None and image["probability"] is None
    # The upload is audited like the page's, in the same transaction.
    assert AuditEvent.objects.filter(action="upload", object_id=body["id"], username="owner").count() == 1


def test_detail_has_results_and_file_urls_once_done(owner, token_client, api_done_case):
    client = token_client(owner)
    body = client.get(api_done_case["url"]).json()
    image = body["images"][0]
    assert body["status"] == "done" and body["positive"] is True and image["error"] == ""
    assert image["probability"] == pytest.approx(0.9) and image["model_version"] == "stub-1"
    # Next to model_version: how the network ran (the stub names none; a worker: torch, torch-bf16, onnx).
    keys = list(image)
    assert image["backend"] == "" and keys.index("backend") == keys.index("model_version") + 1
    for kind in ("mask", "overlay"):
        response = client.get(image[f"{kind}_url"])
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        png = Image.open(io.BytesIO(b"".join(response.streaming_content)))
        assert png.size == (image["width"], image["height"])
    mask = np.asarray(Image.open(io.BytesIO(b"".join(client.get(image["mask_url"]).streaming_content))))
    assert (mask > 0).mean() == pytest.approx(image["area_fraction"])
    # Three file views (mask twice, overlay once), three audit rows.
    assert AuditEvent.objects.filter(action="view_image", object_id=image["id"]).count() == 3


def test_idempotency_key_creates_nothing_twice(owner, token_client, xray_file):
    client = token_client(owner)
    first = client.post("/api/v1/cases/", {"images": [xray_file()]}, format="multipart",
                        HTTP_IDEMPOTENCY_KEY="upload-0001")
    again = client.post("/api/v1/cases/", {"images": [xray_file()]}, format="multipart",
                        HTTP_IDEMPOTENCY_KEY="upload-0001")
    assert first.status_code == 201 and again.status_code == 200
    assert again["Idempotent-Replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert Case.objects.filter(owner=owner).count() == 1
    # The same key with different files is a client bug: refused, nothing created.
    other_file = client.post("/api/v1/cases/", {"images": [xray_file("png")]}, format="multipart",
                             HTTP_IDEMPOTENCY_KEY="upload-0001")
    assert other_file.status_code == 422 and "Idempotency-Key" in other_file.json()["detail"]
    # Keys are per user: another user's identical key is a new case of theirs.
    assert Case.objects.filter(owner=owner).count() == 1


def test_idempotency_key_for_batches(owner, token_client):
    client = token_client(owner)
    first = client.post("/api/v1/batches/", {"label": "a", "expected_cases": 3}, format="json",
                        HTTP_IDEMPOTENCY_KEY="batch-1")
    again = client.post("/api/v1/batches/", {"label": "a", "expected_cases": 3}, format="json",
                        HTTP_IDEMPOTENCY_KEY="batch-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]


def test_client_reference_is_unique_per_owner(owner, other, token_client, xray_file):
    first = token_client(owner).post("/api/v1/cases/", {"images": [xray_file()], "client_reference": "R1"},
                                     format="multipart")
    dup = token_client(owner).post("/api/v1/cases/", {"images": [xray_file()], "client_reference": "R1"},
                                   format="multipart")
    assert dup.status_code == 409 and dup.json()["case"] == first.json()["id"]
    theirs = token_client(other).post("/api/v1/cases/", {"images": [xray_file()], "client_reference": "R1"},
                                      format="multipart")
    assert theirs.status_code == 201


@pytest.mark.parametrize("fields, reason", [
    ({}, "choose at least one"),
    ({"images": "TEXT-AS-PNG"}, "evil.png"),
    ({"images": "DICOM", "batch": "not-a-uuid"}, "no such batch"),
    ({"images": "DICOM", "client_reference": "bad\x00ref"}, "control characters"),
])
def test_validation_errors_are_400_with_reasons_and_store_nothing(owner, token_client, xray_file,
                                                                  fields, reason):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if fields.get("images") == "TEXT-AS-PNG":
        fields["images"] = [SimpleUploadedFile("evil.png", b"not an image at all")]
    elif fields.get("images") == "DICOM":
        fields["images"] = [xray_file()]
    response = token_client(owner).post("/api/v1/cases/", fields, format="multipart")
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["detail"] and any(reason in e for e in body["errors"]), body
    assert not Case.objects.exists() and not CaseImage.objects.exists()


def test_lateral_film_is_refused_through_the_api_too(owner, token_client):
    from tests.support.dicom import chest_dicom

    response = token_client(owner).post("/api/v1/cases/", {"images": [chest_dicom("LL", name="lat.dcm")]},
                                        format="multipart")
    assert response.status_code == 400, response.content
    assert any("lat.dcm: This is a lateral view (ViewPosition LL): the model reads frontal PA/AP "
               "chest films only" in e for e in response.json()["errors"])
    assert not Case.objects.exists() and not CaseImage.objects.exists()
    accepted = token_client(owner).post("/api/v1/cases/", {"images": [chest_dicom("AP")]},
                                        format="multipart")
    assert accepted.status_code == 201, accepted.content


def test_too_many_files_is_a_400_with_the_reason(owner, token_client, xray_file, settings):
    from django.core.files.uploadedfile import SimpleUploadedFile

    files = [SimpleUploadedFile(f"{i}.png", b"x") for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FILES + 1)]
    response = token_client(owner).post("/api/v1/cases/", {"images": files}, format="multipart")
    assert response.status_code == 400 and "files per case" in response.json()["errors"][0]
    assert not Case.objects.exists()


def test_bad_idempotency_key_and_media_type_are_refused(owner, token_client, xray_file):
    client = token_client(owner)
    response = client.post("/api/v1/cases/", {"images": [xray_file()]}, format="multipart",
                           HTTP_IDEMPOTENCY_KEY="x" * 201)
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["errors"][0]
    response = client.post("/api/v1/cases/", {"images": "x"}, format="json")
    assert response.status_code == 415
    assert not Case.objects.exists()


def test_filters_and_pagination(owner, token_client, api_case, run_jobs):
    client = token_client(owner)
    done = api_case(owner, index=0)
    run_jobs(done["id"])
    queued = [api_case(owner, index=i) for i in (1, 2)]

    def ids(query):
        response = client.get(f"/api/v1/cases/?{query}")
        assert response.status_code == 200, response.content
        return {c["id"] for c in response.json()["results"]}

    assert ids("status=done") == {done["id"]}
    assert ids("status=queued") == {c["id"] for c in queued}
    assert ids("status=failed") == ids("status=running") == set()
    assert ids("positive=true") == {done["id"]}
    assert ids("positive=false") == set()
    assert ids("created_after=2000-01-01T00:00:00Z") == {done["id"], *(c["id"] for c in queued)}
    assert ids("created_before=2000-01-01T00:00:00Z") == set()
    page = client.get("/api/v1/cases/?page_size=2").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
    assert len(client.get(page["next"]).json()["results"]) == 1
    bad = client.get("/api/v1/cases/?status=maybe&created_after=yesterday")
    assert bad.status_code == 400 and len(bad.json()["errors"]) == 2


def test_batch_progress(owner, token_client, api_case, run_jobs):
    client = token_client(owner)
    batch = client.post("/api/v1/batches/", {"label": "night", "expected_cases": 2}, format="json").json()
    assert batch["progress"]["complete"] is False and batch["progress"]["cases"] == 0
    first = api_case(owner, index=0, batch=batch["id"])
    run_jobs(first["id"])
    progress = client.get(batch["url"]).json()["progress"]
    assert progress == {**progress, "cases": 1, "images": 1, "done": 1, "complete": False}
    second = api_case(owner, index=1, batch=batch["id"])
    progress = client.get(batch["url"]).json()["progress"]
    assert progress["queued"] == 1 and progress["fraction_finished"] == 0.5 and not progress["complete"]
    run_jobs(second["id"])
    progress = client.get(batch["url"]).json()["progress"]
    assert progress["complete"] and progress["fraction_finished"] == 1.0 and progress["positive"] == 2
    listed = client.get(batch["cases_url"]).json()["results"]
    assert {c["id"] for c in listed} == {first["id"], second["id"]}
    assert all(c["batch"] == batch["id"] for c in listed)


def test_every_call_is_audited(owner, token_client, api_done_case):
    client = token_client(owner)
    image = client.get(api_done_case["url"]).json()["images"][0]
    before = AuditEvent.objects.count()
    calls = ["/api/v1/cases/", api_done_case["url"], image["url"], image["original_url"],
             image["preview_url"], image["mask_url"], image["overlay_url"], image["dicom_seg_url"],
             image["dicom_sc_url"], "/api/v1/batches/"]
    for url in calls:
        assert client.get(url).status_code == 200, url
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert len(events) == len(calls)
    assert all(e.username == "owner" and e.client_address == "10.4.5.6" for e in events)
    assert {e.action for e in events} == {"view_case", "view_image", "download"}
    assert all(e.detail["api"].startswith("GET /api/v1/") for e in events)
    client.delete(api_done_case["url"])
    assert AuditEvent.objects.filter(action="delete", object_id=api_done_case["id"]).exists()


def test_throttling_per_user(owner, other, token_client, settings):
    settings.API_THROTTLE_RATES = {"user": "3/minute", "anon": "2/minute"}
    client = token_client(owner)
    assert [client.get("/api/v1/cases/").status_code for _ in range(4)] == [200, 200, 200, 429]
    assert int(client.get("/api/v1/cases/")["Retry-After"]) > 0
    assert token_client(other).get("/api/v1/cases/").status_code == 200  # per user


def test_create_api_token_command_issues_a_working_token(owner, capsys):
    from rest_framework.test import APIClient

    call_command("create_api_token", "owner", "--name", "bulk")
    key = capsys.readouterr().out.strip()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/cases/").status_code == 200


def test_schema_and_interactive_docs_are_served_locally(client, owner):
    assert client.get("/api/schema/?format=json").status_code in (401, 403)  # login everywhere
    for url in ("/api/docs/", "/api/redoc/"):  # browser pages: to the login page (test_docs.py)
        assert client.get(url).status_code == 302 and "/login/" in client.get(url)["Location"], url
    client.force_login(owner)
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200 and schema.json()["openapi"].startswith("3.")
    assert "/api/v1/cases/{case_id}/images/{image_id}/dicom-seg/" in schema.json()["paths"]
    for url in ("/api/docs/", "/api/redoc/"):
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert "cdn" not in html.lower() and "unpkg" not in html and "jsdelivr" not in html
        assert "/static/drf_spectacular_sidecar/" in html
