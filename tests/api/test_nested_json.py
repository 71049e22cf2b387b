"""A JSON body nested deeper than the API's parser allows is a 400 JSON answer with the reason,
through every JSON endpoint (a batch, a review), never a 500 HTML page; nothing is stored."""

import json

import pytest

from tests.support.factories import CaseFactory
from tests.support.stubs import StubPredictor
from webapp.api.models import Batch
from webapp.api.parsers import MAX_JSON_DEPTH, json_depth
from webapp.reviews.models import Review

pytestmark = pytest.mark.django_db


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


def nested_objects(levels: int) -> str:
    return '{"label": ' * levels + '"x"' + "}" * levels


@pytest.fixture
def review_url(owner):
    case = CaseFactory(owner=owner, predictor=StubPredictor())
    image = case.images.get()
    return f"/api/v1/cases/{case.pk}/images/{image.pk}/reviews/"


@pytest.mark.parametrize("body", [nested(1500), nested_objects(1500), nested(100_000),
                                  nested(MAX_JSON_DEPTH + 1)])
def test_deep_json_to_a_batch_is_a_400_json(login, owner, body):
    response = login(owner).post("/api/v1/batches/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response["Content-Type"] == "application/json"
    assert "nested too deeply" in response.json()["detail"]
    assert not Batch.objects.exists()


@pytest.mark.parametrize("body", [
    nested(1500),
    '{"verdict": "agree", "true_label": "present", "comment": ' + nested(1500) + "}",
])
def test_deep_json_to_a_review_is_a_400_json(login, owner, review_url, body):
    response = login(owner).post(review_url, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert "nested too deeply" in response.json()["detail"]
    assert not Review.objects.exists()


def test_shallow_json_still_works(login, owner, review_url):
    client = login(owner)
    batch = client.post("/api/v1/batches/", {"label": "night shift"}, content_type="application/json")
    assert batch.status_code == 201, batch.content
    review = client.post(review_url, {"verdict": "agree", "true_label": "present"},
                         content_type="application/json")
    assert review.status_code == 201, review.content


@pytest.mark.parametrize("text, depth", [("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4),
                                         (nested(MAX_JSON_DEPTH), MAX_JSON_DEPTH)])
def test_depth_is_counted_as_json_nests(text, depth):
    assert json_depth(json.loads(text)) == depth
