"""/api/v1/cases/<case>/images/<image>/reviews/: reading and giving reviews through the API, with
the same rules as the case page (webapp.reviews.services), and the endpoint in the schema."""

import pytest

from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import Job, JobStatus
from webapp.reviews.models import Review

pytestmark = pytest.mark.django_db


def reviews_url(case):
    return f"/api/v1/cases/{case['id']}/images/{case['images'][0]['id']}/reviews/"


def test_owner_reviews_then_replaces_the_review(token_client, owner, api_done_case):
    client = token_client(owner)
    url = reviews_url(api_done_case)
    assert client.get(url).json() == []
    response = client.post(url, {"verdict": "disagree", "true_label": "absent", "comment": "  Skin fold "},
                           format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["image"] == api_done_case["images"][0]["id"] and body["reviewer"] == "owner"
    assert (body["verdict"], body["true_label"], body["comment"]) == ("disagree", "absent", "Skin fold")
    assert (body["model_version"], body["probability"], body["positive"]) == ("stub-1", 0.9, True)
    again = client.post(url, {"verdict": "agree", "true_label": "present"}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert again.json()["comment"] == ""
    [listed] = client.get(url).json()
    assert listed["verdict"] == "agree" and listed["created_at"] == body["created_at"]
    assert AuditEvent.objects.filter(action=Action.REVIEW, user=owner).count() == 2
    viewed = AuditEvent.objects.filter(action=Action.VIEW_IMAGE, detail__kind="reviews")
    assert viewed.count() == 2 and viewed.first().detail["api"].startswith("GET /api/v1/")


def test_strangers_get_404_and_anonymous_callers_401(token_client, owner, other, api_done_case):
    url = reviews_url(api_done_case)
    stranger = token_client(other)
    assert stranger.get(url).status_code == 404
    assert stranger.post(url, {"verdict": "agree", "true_label": "present"}, format="json").status_code == 404
    assert token_client().get(url).status_code == 401
    assert not Review.objects.exists()


@pytest.mark.parametrize("fields, reason", [
    ({"true_label": "present"}, "verdict: This field is required."),
    ({"verdict": "agree", "true_label": "maybe"}, 'true_label: "maybe" is not a valid choice.'),
    ({"verdict": "agree", "true_label": "present", "comment": "x" * 2001},
     "comment: Ensure this field has no more than 2000 characters."),
])
def test_invalid_reviews_are_refused_with_reasons(token_client, owner, api_done_case, fields, reason):
    response = token_client(owner).post(reviews_url(api_done_case), fields, format="json")
    assert response.status_code == 400
    assert response.json()["detail"] == "The request is not valid." and reason in response.json()["errors"]
    assert not Review.objects.exists()


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.FAILED])
def test_an_image_without_a_result_answers_409(token_client, owner, api_case, status):
    case = api_case(owner)
    Job.objects.filter(image_id=case["images"][0]["id"]).update(status=status)
    response = token_client(owner).post(reviews_url(case), {"verdict": "agree", "true_label": "present"},
                                        format="json")
    assert response.status_code == 409
    assert "no result to review yet" in response.json()["detail"]
    assert not Review.objects.exists() and not AuditEvent.objects.filter(action=Action.REVIEW).exists()


def test_the_schema_documents_the_endpoint(token_client, owner):
    schema = token_client(owner).get("/api/schema/?format=json").json()
    path = schema["paths"]["/api/v1/cases/{case_id}/images/{image_id}/reviews/"]
    assert path["get"]["operationId"] == "image_reviews_list"
    post = path["post"]
    assert post["operationId"] == "image_reviews_create"
    assert {"200", "201", "400", "404", "409"} <= set(post["responses"])
    request = schema["components"]["schemas"]["ReviewCreateRequest"]
    assert set(request["required"]) == {"verdict", "true_label"}
    assert "probability" in schema["components"]["schemas"]["Review"]["properties"]
