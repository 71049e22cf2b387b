"""The held-out figures of a model file, as the model page shows them
(webapp.cases.services.model_versions): those of the call (the operating point) and those of
"review first", the second, lower threshold on the same probability that the worklist sorts by.

``ml.evaluate --set-operating-point`` stores both in the file's metadata. Files evaluated before
it stored the review-first figures (the shipped one) have them only in the model card's
report.json (``high_sensitivity``): they are read from there when the report is of the very
same version, and never guessed otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

MODEL_CARD_REPORT = Path(__file__).resolve().parents[1] / "model-card" / "report.json"


def review_first_figures(high_sensitivity: dict) -> dict:
    """The test half's figures at the review-first threshold, with the sensitivity it was set
    for on the calibration half (``ml.evaluation.figures.high_sensitivity_figures``)."""
    test = dict(high_sensitivity.get("test") or {})
    if test and high_sensitivity.get("target_sensitivity") is not None:
        test["target_sensitivity"] = high_sensitivity["target_sensitivity"]
    return test


def held_out_figures(info, report_path: Path = MODEL_CARD_REPORT) -> dict:
    """The test figures of ``info`` (a ``ml.core.checkpoint.ModelInfo``), with the review-first
    ones under ``review_first`` where they are known."""
    figures = dict(info.evaluation.get("test") or {})
    review_first = info.evaluation.get("review_first") or _from_report(info.version, report_path)
    if figures and review_first:
        figures["review_first"] = review_first
    return figures


def _from_report(version: str, report_path: Path) -> dict:
    try:
        report = json.loads(Path(report_path).read_text())
    except (OSError, ValueError):
        return {}
    if not version or not isinstance(report, dict) or report.get("version") != version:
        return {}
    return review_first_figures(report.get("high_sensitivity") or {})
