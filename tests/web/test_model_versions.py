"""The model page: what the workers registered, with the measured figures, for clinicians."""

import pytest
from django.urls import reverse

from webapp.cases.models import ModelVersion
from webapp.cases.services.model_versions import register_model_version

pytestmark = pytest.mark.django_db

FIGURES = {"images": 172, "positives": 70, "negatives": 102, "sensitivity": 0.4286,
           "specificity": 0.9804, "auc": 0.879, "true_positives": 30, "false_negatives": 40,
           "false_positives": 2, "true_negatives": 100, "dice_positive": 0.17,
           "per_image": [1, 2, 3]}


def register(version="unet-test-256px-abc", figures=FIGURES):
    return register_model_version(version=version, encoder="tf_efficientnet_lite0", image_size=256,
                                  operating_point={"image_threshold": 0.48}, test_figures=figures)


def test_registering_again_refreshes_one_row():
    first = register(figures={})
    again = register()
    assert ModelVersion.objects.count() == 1 and again.pk == first.pk
    assert again.test_figures["sensitivity"] == 0.4286 and again.last_seen_at >= first.last_seen_at
    assert "per_image" not in again.test_figures  # only the figures shown are kept


def test_page_shows_what_the_model_misses(login, owner):
    register()
    page = login(owner).get(reverse("cases:model_versions")).content.decode()
    assert "unet-test-256px-abc" in page
    assert "Finds 30 of 70" in page and "misses 40" in page and "sensitivity 43%" in page
    assert "specificity 98%" in page


def test_unevaluated_model_is_said_to_be_unchecked(login, owner):
    register(version="unet-unevaluated", figures=None)
    page = login(owner).get(reverse("cases:model_versions")).content.decode()
    assert "unet-unevaluated" in page and "no measured figures" in page


def test_page_needs_login(client):
    response = client.get(reverse("cases:model_versions"))
    assert response.status_code == 302 and reverse("login") in response["Location"]


# --- both thresholds (issue 20): the call and "review first" -----------------------------------

REVIEW_FIRST = {"sensitivity": 0.9294, "specificity": 0.7596, "true_positives": 79,
                "false_negatives": 6, "false_positives": 25, "true_negatives": 79, "positives": 85,
                "negatives": 104, "target_sensitivity": 0.9, "auc": 0.94}


def test_page_shows_both_thresholds_in_words(login, owner):
    register_model_version(version="unet-two-points", encoder="tf_efficientnet_lite0", image_size=256,
                           operating_point={"image_threshold": 0.21, "review_threshold": 0.0684},
                           test_figures={**FIGURES, "review_first": REVIEW_FIRST})
    page = login(owner).get(reverse("cases:model_versions")).content.decode()
    call, review = page.split('"Review first"', 1)
    assert '"Pneumothorax detected"' in call and "probability ≥ 0.21" in call
    assert "Finds 30 of 70" in call and "sensitivity 43%" in call and "specificity 98%" in call
    assert "probability ≥ 0.068" in review and "top of the worklist" in review
    assert "to find 90% of pneumothoraces" in review
    assert "Flags 79 of 85" in review and "misses 6" in review and "sensitivity 93%" in review
    assert "Also flags 25 of 104" in review and "specificity 76%" in review
    assert "Where these were measured: 172 test images" in page
    assert "auc" not in ModelVersion.objects.get().test_figures["review_first"]  # only what is shown


def test_a_review_threshold_without_figures_says_they_are_unknown(login, owner):
    register_model_version(version="unet-no-rf-figures", encoder="x", image_size=256,
                           operating_point={"image_threshold": 0.21, "review_threshold": 0.07},
                           test_figures=FIGURES)
    page = login(owner).get(reverse("cases:model_versions")).content.decode()
    assert "its figures were not stored with this model" in page and "Flags" not in page


def test_the_shipped_model_registers_its_review_first_figures(login, owner, settings):
    """What a worker registers at start from the shipped file: the review-first figures of its
    model card's report (the file predates storing them), shown on the page."""
    import json

    from ml.core.model_card import MODEL_CARD_REPORT
    from workers.model import model_summary

    summary = model_summary()
    report = json.loads(MODEL_CARD_REPORT.read_text())
    assert report["version"] == summary["version"]
    expected = report["high_sensitivity"]["test"]
    register_model_version(**summary)
    shown = ModelVersion.objects.get(version=summary["version"]).test_figures["review_first"]
    assert shown["sensitivity"] == expected["sensitivity"] and shown["specificity"] == expected["specificity"]
    page = login(owner).get(reverse("cases:model_versions")).content.decode()
    assert f"Flags {expected['true_positives']} of {expected['positives']}" in page
    assert f"sensitivity {round(expected['sensitivity'] * 100)}%" in page
