"""RLE (both encodings) against the PNG masks, the three dataset layouts, the patient split."""

from __future__ import annotations

import csv
import random

import numpy as np
import pytest
from PIL import Image

from ml.core import rle
from ml.core.reading import read_xray
from ml.training.datasets import load_folders, load_siim, load_subset, read_rle_csv, split_by_patient


def png_mask(path) -> np.ndarray:
    return np.where(np.asarray(Image.open(path).convert("L")) > 127, 255, 0).astype(np.uint8)


@pytest.fixture(scope="module")
def rle_rows(shared_data) -> dict[str, list[str]]:
    return read_rle_csv(shared_data / "rle-examples.csv")


def test_hand_encodings():
    # 4 rows x 3 columns; column-major flat indices 0, 1 and 7 are set
    mask = np.zeros((4, 3), dtype=np.uint8)
    mask[0, 0] = mask[1, 0] = mask[3, 1] = 255
    assert rle.encode(mask, relative=False) == "1 2 8 1"
    assert rle.encode(mask, relative=True) == "0 2 5 1"
    np.testing.assert_array_equal(rle.decode("1 2 8 1", 4, 3, relative=False), mask)
    np.testing.assert_array_equal(rle.decode("0 2 5 1", 4, 3, relative=True), mask)
    assert rle.encode(np.zeros((4, 3))) == "-1"
    assert not rle.decode("-1", 4, 3).any()
    with pytest.raises(ValueError):
        rle.decode("1 2 3", 4, 3)


def test_rle_examples_equal_png_masks(shared_data, labels, rle_rows):
    by_id = {row["image_id"]: row for row in labels}
    assert len(rle_rows) == 90
    for image_id, rows in rle_rows.items():
        expected = png_mask(shared_data / by_id[image_id]["mask"])
        np.testing.assert_array_equal(rle.merge_rows(rows), expected, err_msg=image_id)
        assert (by_id[image_id]["has_pneumothorax"] == "1") == bool(expected.any())


def test_standard_encoding_round_trip(shared_data, labels, rle_rows):
    by_id = {row["image_id"]: row for row in labels}
    for image_id in sorted(rle_rows)[:15]:
        mask = png_mask(shared_data / by_id[image_id]["mask"])
        for relative in (False, True):
            np.testing.assert_array_equal(rle.decode(rle.encode(mask, relative), relative=relative), mask)
        # every challenge row re-encoded in the standard encoding decodes to the same instance
        for row in rle_rows[image_id]:
            instance = rle.decode(row)
            np.testing.assert_array_equal(rle.decode(rle.encode(instance, relative=False), relative=False),
                                          instance)


def test_official_siim_layout(tmp_path, shared_data, labels, pick, rle_rows, make_dicom):
    """A DICOM tree as SIIM published it (nested folders) plus the RLE CSV, in both encodings.

    The subset holds the rle-examples images as JPEG/PNG exports, so those are wrapped back into
    DICOMs here; real shared DICOM negatives are linked in with ``-1`` rows, and one DICOM without
    a row must be skipped."""
    by_id = {row["image_id"]: row for row in labels}
    examples = sorted(i for i in rle_rows if by_id[i]["has_pneumothorax"] == "1")[:4] + \
        sorted(i for i in rle_rows if by_id[i]["has_pneumothorax"] == "0")[:2]
    negatives = [row["image_id"] for row in pick(labels, ".dcm", False, 4)]
    tree = tmp_path / "dicom-images-train"
    for n, image_id in enumerate(examples):
        folder = tree / f"study{n}" / f"series{n}"
        folder.mkdir(parents=True)
        pixels = read_xray(shared_data / by_id[image_id]["image"]).pixels
        (folder / f"{image_id}.dcm").write_bytes(make_dicom(pixels, PatientID=f"patient-{image_id[-6:]}",
                                                            PixelSpacing=[0.143, 0.143]))
    for n, image_id in enumerate(negatives):
        folder = tree / f"real{n}" / "series"
        folder.mkdir(parents=True)
        (folder / f"{image_id}.dcm").symlink_to(shared_data / by_id[image_id]["image"])
    annotated = examples + negatives[:3]  # the last real DICOM has no row: skipped

    for encoding in ("relative", "standard"):
        csv_path = tmp_path / f"train-rle-{encoding}.csv"
        with open(csv_path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["ImageId", " EncodedPixels"])  # the challenge's header had the space
            for image_id in annotated:
                for row in rle_rows.get(image_id, ["-1"]):
                    if encoding == "standard" and row != "-1":
                        row = rle.encode(rle.decode(row), relative=False)
                    writer.writerow([image_id, f" {row}"])
        samples = load_siim(tree, csv_path, encoding)
        assert sorted(s.image_id for s in samples) == sorted(annotated)
        for sample in samples:
            expected = png_mask(shared_data / by_id[sample.image_id]["mask"])
            np.testing.assert_array_equal(sample.load_mask(1024, 1024), expected, err_msg=sample.image_id)
            assert sample.has_pneumothorax == (by_id[sample.image_id]["has_pneumothorax"] == "1")
            if sample.image_id in examples:
                assert sample.patient_id == f"patient-{sample.image_id[-6:]}"
            assert read_xray(sample.image_path).pixels.shape == (1024, 1024)

    # a patient CSV (e.g. NIH patient numbers) overrides the per-image anonymised PatientID
    patients_csv = tmp_path / "patients.csv"
    patients_csv.write_text("image_id,patient_id\n" + "".join(
        f"{image_id},{by_id[image_id]['patient_id']}\n" for image_id in annotated))
    samples = load_siim(tree, tmp_path / "train-rle-relative.csv", "relative", patients_csv)
    assert {s.image_id: s.patient_id for s in samples} == {i: by_id[i]["patient_id"] for i in annotated}


def test_folders_layout(tiny_dataset, labels, tmp_path):
    by_id = {row["image_id"]: row for row in labels}
    samples = load_folders(tiny_dataset)
    assert len(samples) == 16
    assert sum(s.has_pneumothorax for s in samples) == 8
    for sample in samples:
        assert sample.has_pneumothorax == (by_id[sample.image_id]["has_pneumothorax"] == "1")
    broken = tmp_path / "broken"
    (broken / "images").mkdir(parents=True)
    (broken / "masks").mkdir()
    (broken / "images" / "lonely.png").symlink_to(samples[0].image_path)
    with pytest.raises(FileNotFoundError):
        load_folders(broken)


def test_subset_layout(shared_data):
    samples = load_subset(shared_data)
    assert len(samples) == 1997
    assert sum(s.has_pneumothorax for s in samples) == 1030
    assert len({s.patient_id for s in samples}) == 1214


def test_frozen_held_out_patients_keep_the_first_split_as_the_subset_grew(shared_data, labels):
    """The subset grew from 1,874 to 1,997 images (123 DICOM positives of patients already in
    it). Drawn again, the split would move patients between training and validation, and the
    shipped models (trained on the first split) would be scored on images they learned from.
    The frozen list is the first draw, and every new image joins its patient's side."""
    from ml.training.datasets import SUBSET_VALIDATION_PATIENTS, read_patient_list

    samples = load_subset(shared_data)
    added = {row["image_id"] for row in labels if row["source"].endswith("from torchxrayvision")}
    first_images = [s for s in samples if s.image_id not in added]
    assert len(first_images) == 1874
    frozen = read_patient_list(SUBSET_VALIDATION_PATIENTS)
    redrawn_then = {s.patient_id for s in split_by_patient(first_images, 0.2, seed=0)[1]}
    assert set(frozen) == redrawn_then and len(frozen) == 243

    train, validation = split_by_patient(samples, 0.2, seed=0, validation_patients=frozen)
    assert not {s.patient_id for s in train} & {s.patient_id for s in validation}
    assert len(validation) == 389 and sum(s.has_pneumothorax for s in validation) == 193
    redrawn_now = {s.patient_id for s in split_by_patient(samples, 0.2, seed=0)[1]}
    assert redrawn_now != set(frozen)  # why the list is frozen


def test_patient_split_disjoint_deterministic(shared_data):
    samples = load_subset(shared_data)
    train, validation = split_by_patient(samples, 0.2, seed=0)
    assert len(train) + len(validation) == len(samples)
    assert not {s.patient_id for s in train} & {s.patient_id for s in validation}
    again = split_by_patient(samples, 0.2, seed=0)[1]
    assert [s.image_id for s in again] == [s.image_id for s in validation]
    shuffled = samples[:]
    random.Random(1).shuffle(shuffled)
    assert {s.image_id for s in split_by_patient(shuffled, 0.2, seed=0)[1]} == {s.image_id for s in validation}
    other = split_by_patient(samples, 0.2, seed=1)[1]
    assert {s.image_id for s in other} != {s.image_id for s in validation}
    patients = len({s.patient_id for s in samples})
    assert abs(len({s.patient_id for s in validation}) / patients - 0.2) < 0.01
    # stratified by patient: the share of patients with a positive image is kept
    def positive_patients(group):
        ids = {s.patient_id for s in group}
        return len({s.patient_id for s in group if s.has_pneumothorax}) / len(ids)
    assert abs(positive_patients(validation) - positive_patients(samples)) < 0.01


def test_evaluation_recomputes_the_split_training_wrote_down(tiny_model, tiny_dataset):
    """ml.evaluate finds the held-out images from the model file alone; they must be the ones
    ml.train held out and wrote to validation_ids.txt."""
    from ml.core.checkpoint import read_info
    from ml.training.datasets import held_out_samples

    written = (tiny_model.parent / "validation_ids.txt").read_text().split()
    config = read_info(tiny_model).training["config"]
    recomputed = [s.image_id for s in held_out_samples(load_folders(tiny_dataset), config)]
    assert written and sorted(written) == sorted(recomputed)


def test_calibration_and_test_halves_do_not_follow_the_training_seed(shared_data, tmp_path):
    """Candidates trained with another --seed on the frozen held-out patients are scored on the
    calibration half of the model they would replace, and never on its test half."""
    import argparse

    from ml.evaluation.report import held_out_halves
    from ml.training.datasets import SUBSET_VALIDATION_PATIENTS

    args = argparse.Namespace(layout="subset", root=str(shared_data), rle_csv=None, encoding="relative",
                              patients_csv=None, validation_ids=None, limit=None,
                              validation_patients=str(SUBSET_VALIDATION_PATIENTS))
    halves = {}
    for seed in (0, 1):
        config = {"seed": seed, "val_fraction": 0.2}
        _, held_out, _, calibration, test = held_out_halves(args, tmp_path / "model.safetensors", config)
        halves[seed] = ({s.image_id for s in calibration}, {s.image_id for s in test})
        assert len(held_out) == 389
        assert not {s.patient_id for s in calibration} & {s.patient_id for s in test}
    assert halves[0] == halves[1]
    calibration_ids, test_ids = halves[0]
    # the halves the shipped model's report was chosen and measured on (ml/model-card/report.json)
    assert (len(calibration_ids), len(test_ids)) == (200, 189)
