"""The feedback layout: clinicians' labels from the product's export (no Django here: the CSV is
written by hand as ``manage.py export_feedback`` writes it), and ``python -m ml.evaluate
--layout feedback`` measuring detection on them at the model's stored operating point."""

from __future__ import annotations

import csv

import pytest

from ml import evaluate
from ml.training.datasets import load_dataset, load_feedback

FIELDS = ("image_id", "case_id", "file", "source_format", "model_version", "probability",
          "positive", "true_label", "verdict", "comment", "reviewer", "reviewed_at")


def write_feedback(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for n, row in enumerate(rows):
            writer.writerow({"case_id": f"case-{n // 2}", "source_format": "png", "model_version": "m1",
                             "probability": "0.5", "positive": "0", "verdict": "agree", "comment": "",
                             "reviewer": "r1", "reviewed_at": "2026-01-01T00:00:00+00:00", **row})
    return path


def test_labels_files_and_patients(tmp_path):
    media = tmp_path / "media"
    (media / "cases").mkdir(parents=True)
    csv_path = write_feedback(tmp_path / "feedback.csv", [
        {"image_id": "a", "file": "cases/a.png", "true_label": "present"},
        {"image_id": "a", "file": "cases/a.png", "true_label": "present", "reviewer": "r2"},
        {"image_id": "b", "file": "cases/b.png", "true_label": "absent"},
        {"image_id": "c", "file": "cases/c.png", "true_label": "uncertain"},
        {"image_id": "d", "file": "/abs/d.png", "true_label": "absent"},
        {"image_id": "d", "file": "/abs/d.png", "true_label": "present", "reviewer": "r2"},
    ])
    samples = load_feedback(csv_path, media)
    assert [(s.image_id, s.has_pneumothorax) for s in samples] == [("a", True), ("b", False)]
    assert samples[0].image_path == media / "cases" / "a.png"
    assert [s.patient_id for s in samples] == ["case-0", "case-1"]
    assert not any(s.has_mask for s in samples)
    with pytest.raises(ValueError, match="no outline"):
        samples[0].load_mask(8, 8)
    # without a media root, relative paths are the CSV's folder's; absolute ones stay
    assert load_feedback(csv_path)[1].image_path == tmp_path / "cases" / "b.png"
    assert load_dataset("feedback", csv_path, media_root=media) == samples


def test_evaluate_feedback_layout(tiny_model, tiny_dataset, labels, tmp_path):
    by_id = {row["image_id"]: row for row in labels}
    images = sorted((tiny_dataset / "images").iterdir())
    rows = [{"image_id": path.stem, "file": f"images/{path.name}", "positive": "1", "probability": "0.8",
             "true_label": "present" if by_id[path.stem]["has_pneumothorax"] == "1" else "absent"}
            for path in images]
    csv_path = write_feedback(tmp_path / "feedback.csv", rows + [
        {"image_id": "lost", "file": "images/lost.png", "true_label": "absent"}])
    out = tmp_path / "eval"
    report = evaluate.main(["--model", str(tiny_model), "--layout", "feedback", "--root", str(csv_path),
                            "--media-root", str(tiny_dataset), "--out", str(out), "--quiet"])
    assert report["data"]["labelled_images"] == 17 and report["data"]["images"] == 16
    assert [u["image_id"] for u in report["data"]["unreadable"]] == ["lost"]
    test = report["test"]
    assert (test["images"], test["positives"], test["negatives"]) == (16, 8, 8)
    assert 0 <= test["auc"] <= 1 and test["sensitivity"] is not None and test["specificity"] is not None
    assert {"auc", "sensitivity", "specificity"} <= set(test["dicom_only"])
    assert report["as_served"]["sensitivity"] == 1.0 and report["as_served"]["specificity"] == 0.0
    assert report["as_served"]["model_versions"] == {"m1": 16}
    assert (out / "report.json").is_file() and (out / "roc.png").stat().st_size > 0
    with pytest.raises(SystemExit, match="outlines"):
        evaluate.main(["--model", str(tiny_model), "--layout", "feedback", "--root", str(csv_path),
                       "--out", str(out), "--set-operating-point", "--quiet"])
