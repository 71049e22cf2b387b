"""ml.core.model_card: the review-first figures of a model file, from its metadata or from the
model card's report of the very same version, never from another model's."""

import json
from types import SimpleNamespace

from ml.core.model_card import held_out_figures, review_first_figures

TEST = {"images": 10, "positives": 4, "sensitivity": 0.5}
HIGH_SENSITIVITY = {"target_sensitivity": 0.9, "image_threshold": 0.07,
                    "test": {"sensitivity": 0.93, "specificity": 0.76, "true_positives": 79}}


def info(version="unet-a", evaluation=None):
    return SimpleNamespace(version=version, evaluation=evaluation if evaluation is not None else {"test": TEST})


def write_report(tmp_path, version):
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"version": version, "high_sensitivity": HIGH_SENSITIVITY}))
    return path


def test_figures_stored_in_the_file_come_first(tmp_path):
    stored = {"sensitivity": 0.8}
    figures = held_out_figures(info(evaluation={"test": TEST, "review_first": stored}),
                               write_report(tmp_path, "unet-a"))
    assert figures["review_first"] == stored and figures["sensitivity"] == 0.5


def test_the_model_cards_report_of_the_same_version(tmp_path):
    figures = held_out_figures(info(), write_report(tmp_path, "unet-a"))
    assert figures["review_first"] == {**HIGH_SENSITIVITY["test"], "target_sensitivity": 0.9}


def test_never_another_models_figures(tmp_path):
    assert "review_first" not in held_out_figures(info(), write_report(tmp_path, "unet-b"))
    assert "review_first" not in held_out_figures(info(), tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    assert "review_first" not in held_out_figures(info(), broken)


def test_an_unevaluated_model_has_no_figures_at_all(tmp_path):
    assert held_out_figures(info(evaluation={}), write_report(tmp_path, "unet-a")) == {}
    assert review_first_figures({}) == {}
