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
