"""python -m ml.predict and python -m ml.evaluate, end to end on tiny inputs."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
from PIL import Image

from ml import evaluate, predict
from ml.core.checkpoint import read_info
from ml.core.decision import OperatingPoint
from ml.evaluation.held_out import CALIBRATION_SPLIT_SEED

REQUIRED = {"image_id", "probability", "positive", "area_fraction", "area_cm2", "model_version", "error"}


def test_predict_command(tiny_model, shared_data, labels, pick, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    dicom, png = pick(labels, ".dcm", False)[0], pick(labels, ".png", True)[0]
    (inputs / "chest-a.dcm").symlink_to(shared_data / dicom["image"])
    (inputs / "notes.png").write_text("not an image")
    single = shared_data / png["image"]
    out = tmp_path / "out"
    assert predict.main(["--input", str(inputs), str(single), "--out", str(out),
                         "--model", str(tiny_model), "--quiet"]) == 0
    with open(out / "predictions.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert REQUIRED <= set(reader.fieldnames)
        rows = {row["image_id"]: row for row in reader}
    assert set(rows) == {"chest-a", "notes", png["image_id"]}
    assert rows["notes"]["error"] and not rows["notes"]["probability"]
    version = read_info(tiny_model).version
    for image_id in ("chest-a", png["image_id"]):
        row = rows[image_id]
        assert not row["error"] and row["model_version"] == version
        assert 0.0 <= float(row["probability"]) <= 1.0 and row["positive"] in ("0", "1")
        mask = np.asarray(Image.open(out / f"{image_id}.png"))
        assert mask.shape == (1024, 1024) and set(np.unique(mask).tolist()) <= {0, 255}
        assert float(row["area_fraction"]) == np.float64((mask > 0).mean()).round(6)
    assert rows["chest-a"]["area_cm2"] != "" and rows[png["image_id"]]["area_cm2"] == ""
    # every input failing is the only failure of the command
    assert predict.main(["--input", str(inputs / "notes.png"), "--out", str(tmp_path / "bad"),
                         "--model", str(tiny_model), "--quiet"]) == 1
    assert predict.main(["--input", str(single), "--out", str(tmp_path / "none"),
                         "--model", str(tmp_path / "missing.safetensors"), "--quiet"]) == 2


def test_evaluate_command(tiny_model, tiny_dataset, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    model = run / "model.safetensors"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.parent / "validation_ids.txt", run / "validation_ids.txt")
    out = tmp_path / "eval"
    report = evaluate.main(["--model", str(model), "--layout", "folders", "--root", str(tiny_dataset),
                            "--out", str(out), "--limit", "8", "--set-operating-point", "--quiet"])
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["operating_point"] == report["operating_point"]
    assert on_disk["split"]["verified_against"] == str(run / "validation_ids.txt")
    assert on_disk["split"]["calibration_test_seed"] == CALIBRATION_SPLIT_SEED
    data = on_disk["data"]
    assert data["calibration_images"] + data["test_images"] == data["held_out_images"] == 8
    test = on_disk["test"]
    for key in ("challenge_own_mix", "challenge_22", "dice_positive", "auc", "sensitivity", "specificity",
                "images", "positives", "negatives", "dicom_only"):
        assert key in test, key
    assert test["positives"] > 0 and test["negatives"] > 0 and 0 <= test["auc"] <= 1
    assert {"auc", "sensitivity", "specificity", "images"} <= set(test["dicom_only"])
    assert set(test["ci95"]) == {"challenge_22", "dice_positive", "auc", "dicom_only_auc"}
    assert {"image_threshold", "test", "test_dicom_only"} <= set(on_disk["high_sensitivity"])
    if test["ci95"]["challenge_22"] is not None:
        low, high = test["ci95"]["challenge_22"]
        assert low <= high
    assert (out / "roc.png").stat().st_size > 0 and (out / "worst_cases.png").stat().st_size > 0
    info = read_info(model)
    assert info.operating_point == OperatingPoint(**on_disk["operating_point"])
    # the worklist's review-first threshold is the high-sensitivity one, stored with the call
    assert info.operating_point.review_threshold == on_disk["high_sensitivity"]["image_threshold"]
    assert info.evaluation["test"]["challenge_22"] == test["challenge_22"]
    assert info.version == read_info(tiny_model).version  # same weights
    # both image scores searched on the calibration half; the better one is the operating point's
    search = on_disk["operating_point_search"]
    assert set(search["score_by_image_score"]) == {"head", "mask_max"}
    assert search["image_score"] == info.operating_point.image_score
    assert search["score"] == max(search["score_by_image_score"].values())


def test_high_sensitivity_threshold_is_chosen_on_calibration_and_applied_to_test():
    from types import SimpleNamespace

    from ml.evaluation.figures import high_sensitivity_figures

    def record(probability, positive, fmt="dicom"):
        return SimpleNamespace(probability=probability, source_format=fmt,
                               sample=SimpleNamespace(has_pneumothorax=positive))

    calibration = [record(p / 10, True) for p in range(1, 11)] + [record(0.95, False)]
    test = [record(0.15, True), record(0.05, True), record(0.5, False), record(0.01, False, "jpeg")]
    result = high_sensitivity_figures(calibration, test, target=0.9)
    assert result["image_threshold"] == 0.2  # 9 of the 10 calibration positives are >= 0.2
    assert result["test"]["true_positives"] == 0 and result["test"]["false_positives"] == 1
    assert result["test_dicom_only"]["images"] == 3


def test_evaluate_calibration_only_never_reads_the_test_half(tiny_model, tiny_dataset, tmp_path, monkeypatch):
    """Choosing between candidates reads the calibration half alone and leaves the model file as it was."""
    from ml.evaluation import report as report_module

    run = tmp_path / "run"
    run.mkdir()
    model = run / "model.safetensors"
    shutil.copy(tiny_model, model)
    shutil.copy(tiny_model.parent / "validation_ids.txt", run / "validation_ids.txt")
    predicted_parts = []
    real_predict = report_module.predict_records

    def recording_predict(predictor, parts, *rest):
        predicted_parts.extend(parts)
        return real_predict(predictor, parts, *rest)

    monkeypatch.setattr(report_module, "predict_records", recording_predict)
    out = tmp_path / "candidate"
    before = model.read_bytes()
    report = evaluate.main(["--model", str(model), "--layout", "folders", "--root", str(tiny_dataset),
                            "--out", str(out), "--limit", "8", "--calibration-only", "--quiet"])
    assert predicted_parts == ["calibration"]
    assert model.read_bytes() == before
    assert json.loads((out / "calibration.json").read_text()) == report
    assert not (out / "report.json").exists()
    figures = report["calibration"]
    assert 0 < report["calibration_images"] < 8 and figures["images"] == report["calibration_images"]
    assert report["operating_point_search"]["score"] == max(
        report["operating_point_search"]["score_by_image_score"].values())
    assert {"auc", "dicom_only", "challenge_22"} <= set(figures)
    review = report["review_first"]
    if figures["positives"]:
        assert review["calibration"]["sensitivity"] >= 0.9


def test_evaluate_refuses_to_store_a_point_chosen_without_the_test_half(tiny_model, tiny_dataset, tmp_path):
    import pytest

    with pytest.raises(SystemExit, match="in full"):
        evaluate.main(["--model", str(tiny_model), "--layout", "folders", "--root", str(tiny_dataset),
                       "--out", str(tmp_path), "--calibration-only", "--set-operating-point"])


def test_an_ensemble_averages_its_members_maps_and_probabilities():
    from types import SimpleNamespace

    import pytest

    from ml.core.checkpoint import CheckpointError
    from ml.evaluation.ensemble import AveragedPredictor

    def member(value, probability, size=4, version="v"):
        return SimpleNamespace(image_size=size, version=version, probability_maps=lambda xrays: (
            np.full((len(xrays), size, size), value, np.float32), np.full(len(xrays), probability, np.float32)))

    ensemble = AveragedPredictor([member(0.2, 0.1, version="a"), member(0.6, 0.5, version="b")])
    maps, probabilities = ensemble.probability_maps([object(), object()])
    assert maps.shape == (2, 4, 4) and np.allclose(maps, 0.4) and np.allclose(probabilities, 0.3)
    assert ensemble.versions == ["a", "b"] and ensemble.image_size == 4
    with pytest.raises(CheckpointError, match="resolution"):
        AveragedPredictor([member(0.2, 0.1, size=4), member(0.2, 0.1, size=8)])
    with pytest.raises(CheckpointError, match="two"):
        AveragedPredictor([member(0.2, 0.1)])


def test_evaluate_measures_an_ensemble_on_the_calibration_half_only(tiny_model, tiny_dataset, tmp_path):
    import pytest

    from ml.average import average_model_files

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(tiny_model.parent / "validation_ids.txt", run / "validation_ids.txt")
    model = run / "model.safetensors"
    shutil.copy(tiny_model, model)
    other = run / "other.safetensors"
    average_model_files([tiny_model, tiny_model], other)
    common = ["--layout", "folders", "--root", str(tiny_dataset), "--limit", "8", "--quiet"]
    with pytest.raises(SystemExit, match="calibration-only"):
        evaluate.main(["--model", str(model), "--ensemble-with", str(other), "--out", str(tmp_path / "x"), *common])
    alone = evaluate.main(["--model", str(model), "--out", str(tmp_path / "alone"), "--calibration-only", *common])
    both = evaluate.main(["--model", str(model), "--ensemble-with", str(other), "--out", str(tmp_path / "both"),
                          "--calibration-only", *common])
    assert both["ensemble"]["versions"] == [read_info(model).version, read_info(other).version]
    assert "ensemble" not in alone
    # the second member holds the same weights (stored again), so the mean is the model's own figures
    for figure in ("auc", "dice_positive"):
        measured, expected = both["calibration"][figure], alone["calibration"][figure]
        assert (measured is None and expected is None) or measured == pytest.approx(expected, abs=1e-3)
    assert both["calibration_images"] == alone["calibration_images"]
