"""The reading room on the server side (issue 11): findings in words and both thresholds on the
case page and in the API, the review-first flag, the printable report, the "reviewed" filter
and the viewer's markup. Jobs run through the real pipeline with a stub predictor that outlines
a square on the image's left (the patient's right, by convention)."""

import pytest
from django.urls import reverse

from tests.support.factories import CaseFactory
from tests.support.stubs import StubPredictor

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered_model():
    from webapp.cases.models import ModelVersion

    return ModelVersion.objects.create(
        version="stub-1", encoder="stub", image_size=64, test_figures={},
        operating_point={"image_threshold": 0.45, "review_threshold": 0.13})


def test_case_page_shows_findings_in_words_with_how_each_is_measured(login, owner, done_case):
    page = login(owner).get(reverse("cases:detail", args=[done_case.pk])).content.decode()
    assert "Right lung" in page
    assert "assuming the radiological convention" in page  # the shared DICOM leaves it empty
    assert "Rim depth" in page and "mm" in page and "BTS" in page
    assert "not a segmentation of the lung" in page
    assert "Decision support, not a diagnosis." in page


def test_both_thresholds_next_to_the_probability(login, owner, done_case, registered_model):
    client = login(owner)
    page = client.get(reverse("cases:detail", args=[done_case.pk])).content.decode()
    assert "suspected at ≥ 0.45, the model&#x27;s operating point; review first at ≥ 0.13" in page
    image = client.get(reverse("cases:status", args=[done_case.pk])).json()["images"][0]
    assert (image["image_threshold"], image["review_threshold"]) == (0.45, 0.13)
    assert image["findings_rows"][0][:2] == ["Side", "Right lung"]


def test_a_negative_call_above_the_review_threshold_is_flagged_review_first(login, owner, registered_model):
    case = CaseFactory(owner=owner, predictor=StubPredictor(0.30, positive=False))
    from webapp.cases.models import Job

    Job.objects.filter(image__case=case).update(review_first=True)  # as the real predictor sets it
    client = login(owner)
    image = client.get(reverse("cases:status", args=[case.pk])).json()["images"][0]
    assert image["review_first"] is True and image["side"] is None
    assert image["result_text"].startswith("No pneumothorax detected · review first: above the "
                                           "high-sensitivity threshold · probability 0.30")


def test_api_image_carries_the_findings_fields(login, owner, done_case):
    body = login(owner).get(f"/api/v1/cases/{done_case.pk}/").json()
    image = body["images"][0]
    assert image["side"] == "right"
    assert image["zones"] == ["apical"]  # rows 100-300 of 1024: the upper third
    assert image["rim_depth_mm"] == pytest.approx(200 * 0.143, abs=0.5)  # a 200 px square, 0.143 mm
    assert image["large"] is True  # 28.6 mm >= 20 mm
    assert image["review_first"] is True
    assert image["findings"]["side_basis"] == "convention"


def test_api_image_before_the_result_has_null_findings(login, owner, make_case):
    image = login(owner).get(f"/api/v1/cases/{make_case(owner).pk}/").json()["images"][0]
    assert image["status"] == "queued"
    # Not analysed yet: review_first is null (unknown), not false ("can wait").
    assert (image["side"], image["zones"], image["rim_depth_mm"], image["large"],
            image["review_first"]) == (None, [], None, None, None)
    status = login(owner).get(reverse("cases:status", args=[image_case_id(image)])).json()
    assert status["images"][0]["review_first"] is None


def image_case_id(image):
    return image["url"].split("/cases/")[1].split("/")[0]


def test_schema_says_review_first_is_null_until_done(login, owner):
    schema = login(owner).get("/api/schema/?format=json").json()
    field = schema["components"]["schemas"]["Image"]["properties"]["review_first"]
    assert field["nullable"] is True and field["type"] == "boolean"
    assert "Null until the image is done" in field["description"]


def test_printable_report(login, owner, other, done_case):
    client = login(owner)
    page = client.get(reverse("cases:report", args=[done_case.pk])).content.decode()
    assert "Pneumothorax triage report" in page and "Right lung" in page
    assert "Not yet reviewed by a clinician." in page and "stub-1" in page
    assert login(other).get(reverse("cases:report", args=[done_case.pk])).status_code == 404


def test_report_shows_the_reviewers_verdict(login, owner, done_case):
    from webapp.reviews.services import record_review

    image = done_case.images.get()
    record_review(owner, image, "disagree", "absent", "Skin fold, not a pleural line.", "10.0.0.1")
    page = login(owner).get(reverse("cases:report", args=[done_case.pk])).content.decode()
    assert "owner" in page and "Skin fold, not a pleural line." in page


def test_reviewed_filter_on_the_worklist(login, owner, done_case):
    from webapp.reviews.services import record_review

    waiting_review = CaseFactory(owner=owner, predictor=StubPredictor())
    record_review(owner, done_case.images.get(), "agree", "present", "", "10.0.0.1")
    client = login(owner)
    reviewed = client.get(reverse("cases:list"), {"reviewed": "yes"}).content.decode()
    not_reviewed = client.get(reverse("cases:list"), {"reviewed": "no"}).content.decode()
    assert str(done_case.pk) in reviewed and str(waiting_review.pk) not in reviewed
    assert str(waiting_review.pk) in not_reviewed and str(done_case.pk) not in not_reviewed


def test_viewer_markup_has_labelled_controls_and_local_scripts(login, owner, done_case):
    from tests.web.markup import parse

    page = parse(login(owner).get(reverse("cases:detail", args=[done_case.pk])).content)
    viewer = next(page.find_all(**{"data-viewer": True}))
    assert viewer.attrs["data-image-url"].endswith("/preview.png")
    for role in ("opacity", "overlay-toggle", "style", "window", "level", "side-by-side"):
        control = next(page.find_all(**{"data-viewer-role": role}))
        assert control.parent.tag == "label", role  # every control has a label
    scripts = [tag.attrs.get("src", "") for tag in page.find_all("script")]
    assert any(src.endswith("js/viewer.js") for src in scripts)
    assert all(src.startswith("/static/") for src in scripts if src)
