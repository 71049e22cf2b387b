"""Fine-tuning on this site's films: ``ml.train --feedback DIR`` and ``ml.evaluate --feedback DIR``.

The export folder is built here from shared films in the layout of
``docs/develop/feedback-export.md`` (what ``manage.py export_feedback --out-dir`` writes; the
product side is tested in tests/web/test_learning_loop.py): PNG films, 0/255 masks, a positive
with a true label but no outline, patients of one and two films, a manifest.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pytest
import torch

from ml.training.datasets import Sample
from ml.training.feedback import (FeedbackError, is_held_out, load_site_films, mixed_epoch_indices,
                                  mixed_epoch_size, split_site_films)

HOLDOUT = 0.5  # half of a handful of patients, so that both parts have films


def keys(held_out: bool, count: int, holdout: float = HOLDOUT) -> list[str]:
    """The first ``count`` patient keys of the form site-N that the hash puts on one side."""
    found, n = [], 0
    while len(found) < count:
        key = f"site-{n}"
        if is_held_out(key, holdout) == held_out:
            found.append(key)
        n += 1
    return found


@pytest.fixture(scope="module")
def site_export(tmp_path_factory, labels, shared_data) -> Path:
    """Eight shared films as a site's export: 3 training patients (two with two films), 2
    held-out patients; one training positive has a true label and no outline."""
    from ml.core.reading import read_xray

    positives = [r for r in labels if r["has_pneumothorax"] == "1"][:4]
    negatives = [r for r in labels if r["has_pneumothorax"] == "0"][:4]
    train, held = keys(False, 3), keys(True, 2)
    patients = [train[0], train[0], train[1], held[0], train[1], train[2], held[1], held[1]]
    root = tmp_path_factory.mktemp("site-export")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    rows, images = [], {}
    for n, (row, patient) in enumerate(zip(positives + negatives, patients)):
        image_id = f"0000000{n}-site"
        cv2.imwrite(str(root / "images" / f"{image_id}.png"), read_xray(shared_data / row["image"]).pixels)
        has_mask = n != 2  # a positive confirmed by review, never outlined
        if has_mask:
            (root / "masks" / f"{image_id}.png").write_bytes((shared_data / row["mask"]).read_bytes())
        rows.append({"image_id": image_id, "image": f"images/{image_id}.png",
                     "mask": f"masks/{image_id}.png" if has_mask else "",
                     "has_pneumothorax": row["has_pneumothorax"], "has_mask": int(has_mask),
                     "patient_id": patient, "model_version": "unet-old", "case_id": f"case-{patient}",
                     "label_source": "review", "outline_version": "", "width": 1024, "height": 1024})
        images[image_id] = {"model_version": "unet-old", "outline_version": None}
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (root / "manifest.json").write_text(json.dumps({
        "format": "pneumothorax-feedback", "format_version": 1, "exported_at": "2026-12-04T17:50:00+00:00",
        "counts": {"images": 8}, "model_versions": {"unet-old": 8}, "images": images}))
    return root


def samples(patients: dict[str, int]) -> list[Sample]:
    return [Sample(f"{p}-{i}", Path(f"{p}-{i}.png"), p, i == 0) for p, n in patients.items() for i in range(n)]


def test_site_split_is_by_patient_deterministic_and_stable_as_the_export_grows():
    films = samples({f"patient-{n}": 1 + n % 3 for n in range(2000)})
    train, held = split_site_films(films, 0.2)
    assert (train, held) == split_site_films(list(films), 0.2)
    assert not {s.patient_id for s in train} & {s.patient_id for s in held}
    assert len(train) + len(held) == len(films)
    share = len({s.patient_id for s in held}) / 2000
    assert 0.17 < share < 0.23, share
    # next month's export: more patients, and more films of old ones; nobody changes side
    grown = films + samples({f"patient-{n}": 2 for n in range(1500, 2600)})
    grown_train, grown_held = split_site_films(grown, 0.2)
    assert {s.patient_id for s in held} <= {s.patient_id for s in grown_held}
    assert not {s.patient_id for s in train} & {s.patient_id for s in grown_held}
    assert split_site_films(films, 0.0) == (films, [])
    with pytest.raises(FeedbackError, match="hold-out share"):
        split_site_films(films, 1.0)


def test_each_epoch_mixes_site_and_shared_films_at_the_ratio():
    shared_labels = [n % 2 == 0 for n in range(100)]
    indices = mixed_epoch_indices(shared_labels, n_site=12, fraction=0.3, positive_fraction=0.5, seed=7)
    assert len(indices) == mixed_epoch_size(12, 0.3) == 40
    site = [i for i in indices if i >= 100]
    assert len(site) == 12 and all(100 <= i < 112 for i in site)  # 30% of 40
    assert all(0 <= i < 112 for i in indices)
    assert indices[:20] != sorted(indices[:20])  # shuffled together: batches mix both
    assert indices == mixed_epoch_indices(shared_labels, 12, 0.3, 0.5, seed=7)  # resumable
    assert indices != mixed_epoch_indices(shared_labels, 12, 0.3, 0.5, seed=8)
    with pytest.raises(FeedbackError, match="feedback-fraction"):
        mixed_epoch_indices(shared_labels, 12, 1.0, 0.5, seed=7)


def test_a_film_without_an_outline_teaches_its_label_only():
    from ml.training.losses import HybridLoss

    torch.manual_seed(0)
    mask_logits = torch.randn(2, 1, 8, 8, requires_grad=True)
    class_logits = torch.randn(2, requires_grad=True)
    masks = torch.zeros(2, 1, 8, 8)
    masks[0, :, 2:5, 2:5] = 1.0
    labels = torch.tensor([1.0, 1.0])  # the second: positive by review, its mask a placeholder
    loss_fn = HybridLoss()
    both = loss_fn(mask_logits, class_logits, masks, labels, torch.tensor([1.0, 0.0]))
    outlined = loss_fn(mask_logits[:1], class_logits[:1], masks[:1], labels[:1])
    assert both["pixel"] == pytest.approx(float(outlined["pixel"]))
    assert both["dice"] == pytest.approx(float(outlined["dice"]))
    assert both["label"] == pytest.approx(float(loss_fn(mask_logits, class_logits, masks, labels)["label"]))
    both["loss"].backward()
    assert mask_logits.grad[1].abs().sum() == 0 and mask_logits.grad[0].abs().sum() > 0
    assert class_logits.grad[1] != 0
    mask_logits.grad = None
    only_labels = loss_fn(mask_logits, class_logits, masks, labels, torch.zeros(2))
    only_labels["loss"].backward()
    assert float(only_labels["pixel"]) == 0.0 and mask_logits.grad.abs().sum() == 0


def test_what_is_not_an_export_is_refused_with_a_reason(site_export, tmp_path):
    films, manifest = load_site_films(site_export)
    assert len(films) == 8 and manifest["format"] == "pneumothorax-feedback"
    label_only = [s for s in films if not s.has_mask]
    assert len(label_only) == 1 and label_only[0].has_pneumothorax and label_only[0].mask_path is None
    with pytest.raises(FeedbackError, match="no manifest.json"):
        load_site_films(tmp_path)
    (tmp_path / "manifest.json").write_text("{\"format\": \"something-else\"}")
    with pytest.raises(FeedbackError, match="not a pneumothorax-feedback manifest"):
        load_site_films(tmp_path)
    (tmp_path / "manifest.json").write_text((site_export / "manifest.json").read_text())
    (tmp_path / "labels.csv").write_text((site_export / "labels.csv").read_text())
    with pytest.raises(FeedbackError, match="lacks its image"):
        load_site_films(tmp_path)


@pytest.fixture(scope="module")
def fine_tuned(site_export, tiny_model, tiny_cache, tmp_path_factory) -> Path:
    """One short epoch of ml.train --feedback from the tiny model, at the tiny cache's 128 px."""
    from ml import train

    out = tmp_path_factory.mktemp("site-run")
    path = train.main(["--cache", str(tiny_cache), "--out", str(out), "--feedback", str(site_export),
                       "--init", str(tiny_model), "--feedback-holdout", str(HOLDOUT),
                       "--feedback-fraction", "0.5", "--epochs", "1", "--batch-size", "4", "--quiet"])
    return path


def test_fine_tune_trains_on_the_site_films_and_never_on_the_held_out(fine_tuned, tiny_model, site_export):
    from ml.core.checkpoint import load_model, read_info
    from ml.training.cache import load_cache

    model, info = load_model(fine_tuned)  # a model file the predictor can load
    parent, parent_info = load_model(tiny_model)
    assert info.encoder == parent_info.encoder and info.image_size == parent_info.image_size
    assert info.version != parent_info.version
    assert any(not torch.equal(a, b) for a, b in zip(model.state_dict().values(), parent.state_dict().values())
               if a.is_floating_point())
    config = info.training["config"]
    assert config["feedback_fraction"] == 0.5 and config["feedback_holdout"] == HOLDOUT
    assert config["init"] == str(tiny_model) and config["lr"] == 1e-4
    films, _ = load_site_films(site_export)
    train, held = split_site_films(films, HOLDOUT)
    assert config["site"]["train_images"] == len(train) == 5 and config["site"]["held_out_images"] == len(held) == 3
    assert config["site"]["label_only_train_images"] == 1 and config["site"]["init_version"] == parent_info.version
    assert "site-" not in json.dumps(config["site"])  # counts only: no patient key in the model file
    cached = load_cache(fine_tuned.parent / "site-cache")
    assert sorted(s.image_id for s in cached) == sorted(s.image_id for s in train)
    assert not {s.patient_id for s in cached} & {s.patient_id for s in held}
    assert [s.has_mask for s in cached].count(False) == 1
    # the shared held-out patients are the parent's, and stay out of training
    assert (fine_tuned.parent / "validation_ids.txt").read_text() == (tiny_model.parent / "validation_ids.txt").read_text()
    assert config["train_images"] + config["validation_images"] == 16
    assert info.operating_point == read_info(tiny_model).operating_point  # until evaluated


def test_evaluate_scores_the_held_out_site_films(fine_tuned, tiny_dataset, site_export, tmp_path):
    from ml import evaluate
    from ml.core.checkpoint import read_info

    report = evaluate.main(["--model", str(fine_tuned), "--layout", "folders", "--root", str(tiny_dataset),
                            "--feedback", str(site_export), "--out", str(tmp_path / "eval"), "--quiet"])
    written = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert written["version"] == read_info(fine_tuned).version and "calibration" in written and "test" in written
    site = written["site"]
    films, _ = load_site_films(site_export)
    _, held = split_site_films(films, HOLDOUT)
    assert site == report["site"] and site["holdout"] == HOLDOUT and site["fine_tuned_on_site_films"]
    assert (site["images"], site["patients"]) == (len(held), 2)
    assert site["positives"] == sum(s.has_pneumothorax for s in held)
    assert site["true_positives"] + site["false_negatives"] == site["positives"]
    assert site["read_by"] == {"unet-old": 3}
    assert site["outlined_positives"] == sum(s.has_pneumothorax and s.has_mask for s in held)
    assert site["dice_positive"] is None or 0.0 <= site["dice_positive"] <= 1.0
    assert site["ppv"]["n"] == site["true_positives"] + site["false_positives"]
    if site["sensitivity_ci95"] is not None:
        low, high = site["sensitivity_ci95"]
        assert 0.0 <= low <= site["sensitivity"] <= high <= 1.0
    # the split is the model's: a different share would score it on films it trained on
    with pytest.raises(SystemExit, match="films it trained on"):
        evaluate.main(["--model", str(fine_tuned), "--layout", "folders", "--root", str(tiny_dataset),
                       "--feedback", str(site_export), "--feedback-holdout", "0.2", "--out", str(tmp_path / "x"),
                       "--quiet"])
    with pytest.raises(SystemExit, match="test set"):
        evaluate.main(["--model", str(fine_tuned), "--layout", "folders", "--root", str(tiny_dataset),
                       "--feedback", str(site_export), "--calibration-only", "--out", str(tmp_path / "y"),
                       "--quiet"])


def test_wilson_interval_against_a_hand_computed_value():
    from ml.evaluation.site import wilson

    low, high = wilson(8, 10)  # Wilson's 95% interval for 8/10: 0.490 to 0.943
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert wilson(0, 0) is None and wilson(0, 5)[0] == 0.0


def test_bad_feedback_folder_exits_with_one_line(tiny_cache, tiny_model, tmp_path):
    from ml import train

    with pytest.raises(SystemExit, match="no manifest.json"):
        train.main(["--cache", str(tiny_cache), "--out", str(tmp_path / "run"), "--feedback", str(tmp_path),
                    "--init", str(tiny_model), "--epochs", "1", "--quiet"])
    assert not (tmp_path / "run" / "best.safetensors").exists()
    with pytest.raises(SystemExit, match="--feedback-fraction must be between 0 and 1"):
        train.main(["--cache", str(tiny_cache), "--out", str(tmp_path / "run"), "--feedback", str(tmp_path),
                    "--init", str(tiny_model), "--feedback-fraction", "1.5", "--quiet"])
    with pytest.raises(SystemExit, match="--init: Model file not found"):
        train.main(["--cache", str(tiny_cache), "--out", str(tmp_path / "run"), "--feedback", str(tmp_path),
                    "--init", str(tmp_path / "missing.safetensors"), "--quiet"])
