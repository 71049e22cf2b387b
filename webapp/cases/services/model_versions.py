"""The models workers serve, as the web knows them: registered by each worker at start-up from
its model file's metadata (plain data, so the web never imports torch)."""

from __future__ import annotations

from django.utils import timezone

from webapp.cases.models import ModelVersion

# The figures the model page shows; the model file holds more (per-format counts, intervals).
SHOWN_FIGURES = ("images", "positives", "negatives", "sensitivity", "specificity", "auc",
                 "true_positives", "false_negatives", "false_positives", "dice_positive")
# Those of "review first" (ml.core.model_card), the second threshold the worklist sorts by,
# under their own key: the same test images, another threshold.
REVIEW_FIRST_FIGURES = ("sensitivity", "specificity", "true_positives", "false_negatives",
                        "false_positives", "positives", "negatives", "target_sensitivity")


def shown_figures(test_figures: dict | None) -> dict:
    test_figures = test_figures or {}
    figures = {k: v for k, v in test_figures.items() if k in SHOWN_FIGURES}
    review_first = test_figures.get("review_first")
    if isinstance(review_first, dict) and review_first:
        figures["review_first"] = {k: v for k, v in review_first.items() if k in REVIEW_FIRST_FIGURES}
    return figures


def register_model_version(*, version: str, encoder: str, image_size: int, operating_point: dict,
                           test_figures: dict | None) -> ModelVersion:
    """Create or refresh the row of ``version``. Figures come from the file, so a model
    re-evaluated under the same weights (same version) shows its newest figures.
    ``update_or_create`` runs in its own transaction."""
    figures = shown_figures(test_figures)
    model_version, _ = ModelVersion.objects.update_or_create(
        version=version,
        defaults={"encoder": encoder, "image_size": image_size, "operating_point": operating_point,
                  "test_figures": figures, "last_seen_at": timezone.now()})
    return model_version


def known_model_versions():
    return ModelVersion.objects.all()
