"""Every endpoint, four callers: the owner and an administrator get the object; another
clinician gets 404 (never 403: that would confirm the case exists); anonymous gets 401."""

import pytest

pytestmark = pytest.mark.django_db

FILES = ("original", "preview", "mask", "overlay", "dicom-seg", "dicom-sc", "dicom-sr")


def _urls(case_id, image_id, batch_id):
    image = f"/api/v1/cases/{case_id}/images/{image_id}/"
    return [f"/api/v1/cases/{case_id}/", image, *[f"{image}{kind}/" for kind in FILES],
            f"/api/v1/batches/{batch_id}/"]


@pytest.fixture
def batch_case(owner, token_client, api_case, run_jobs):
    batch = token_client(owner).post("/api/v1/batches/", {"label": "ward 3"}, format="json").json()
    case = api_case(owner, batch=batch["id"])
    run_jobs(case["id"])
    return batch, case


def test_owner_and_admin_see_everything_a_stranger_nothing(batch_case, owner, other, administrator,
                                                           token_client):
    batch, case = batch_case
    urls = _urls(case["id"], case["images"][0]["id"], batch["id"])
    for user in (owner, administrator):
        client = token_client(user)
        for url in urls:
            response = client.get(url)
            assert response.status_code == 200, (user.username, url, response.content[:200])
    stranger = token_client(other)
    for url in urls:
        response = stranger.get(url)
        assert response.status_code == 404, (url, response.status_code)
        assert case["id"] not in response.content.decode(errors="replace")
    anonymous = token_client()
    for url in urls + ["/api/v1/cases/", "/api/v1/batches/"]:
        response = anonymous.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"].startswith("Token")


def test_lists_show_only_what_the_caller_may_see(batch_case, owner, other, administrator, token_client,
                                                 api_case):
    batch, case = batch_case
    others_case = api_case(other, index=1)
    ids = lambda user, url: {c["id"] for c in token_client(user).get(url).json()["results"]}  # noqa: E731
    assert ids(owner, "/api/v1/cases/") == {case["id"]}
    assert ids(other, "/api/v1/cases/") == {others_case["id"]}
    assert ids(administrator, "/api/v1/cases/") == {case["id"], others_case["id"]}
    assert ids(owner, "/api/v1/batches/") == {batch["id"]}
    assert ids(other, "/api/v1/batches/") == set()
    # Filtering by someone else's batch shows nothing either.
    assert ids(other, f"/api/v1/cases/?batch={batch['id']}") == set()


def test_a_stranger_cannot_delete_or_add_to_a_batch(batch_case, owner, other, administrator,
                                                    token_client, xray_file):
    from webapp.cases.models import Case

    batch, case = batch_case
    assert token_client(other).delete(f"/api/v1/cases/{case['id']}/").status_code == 404
    response = token_client(other).post("/api/v1/cases/", {"images": [xray_file()], "batch": batch["id"]},
                                        format="multipart")
    assert response.status_code == 400 and "no such batch" in response.json()["errors"][0]
    assert Case.objects.filter(pk=case["id"]).exists()
    assert token_client(owner).delete(f"/api/v1/cases/{case['id']}/").status_code == 204
    assert not Case.objects.filter(pk=case["id"]).exists()
    assert token_client(administrator).get(f"/api/v1/cases/{case['id']}/").status_code == 404


def test_session_authentication_works_and_needs_csrf(owner, api_done_case, xray_file):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.get(f"/api/v1/cases/{api_done_case['id']}/").status_code == 200
    response = client.post("/api/v1/cases/", {"images": [xray_file()]})
    assert response.status_code == 403  # no CSRF token: a page of another site cannot post


def test_an_invalid_token_is_refused(token_client):
    client = token_client()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/cases/").status_code == 401
