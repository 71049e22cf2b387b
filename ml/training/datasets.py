"""Where the images and masks of a dataset are, in the four layouts we read.

- ``subset``: the team's ``siim-acr-subset`` folder (``labels.csv``, ``images/``, ``masks/``).
- ``siim``: the official SIIM-ACR download: a tree of DICOMs and the challenge's RLE CSV
  (``ImageId,EncodedPixels``), in the stage-1 "relative" or the standard encoding.
- ``folders``: plain pairs ``images/<name>.<ext>`` and ``masks/<name>.png``.
- ``feedback``: the product's clinicians' reviews (``manage.py export_feedback``): a CSV of
  image files and true labels, without outlines.

A ``Sample`` knows how to load its mask; images are read with ``ml.core.reading.read_xray``.
Splits are always by patient, never by image.
"""

from __future__ import annotations

import csv
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ml.core import rle

IMAGE_SUFFIXES = (".dcm", ".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class Sample:
    image_id: str
    image_path: Path
    patient_id: str
    has_pneumothorax: bool
    mask_path: Path | None = None
    rle_rows: tuple[str, ...] = ()
    rle_relative: bool = True
    # False: the label is known, the outline is not (clinician feedback). Detection figures and
    # an image-level head can use such a sample; Dice and a segmentation loss cannot.
    has_mask: bool = True

    def load_mask(self, height: int, width: int) -> np.ndarray:
        """The ground-truth mask (uint8, 0 or 255) at the image's size. Refused for a sample
        without an outline: an empty mask would teach a positive film to have nothing in it."""
        if not self.has_mask:
            raise ValueError(f"{self.image_id} has a label but no outline (has_mask is False)")
        if self.mask_path is not None:
            mask = np.asarray(Image.open(self.mask_path).convert("L"))
            if mask.shape != (height, width):
                raise ValueError(f"Mask of {self.image_id} is {mask.shape}, image {(height, width)}")
            return np.where(mask > 127, 255, 0).astype(np.uint8)
        return rle.merge_rows(list(self.rle_rows), height, width, self.rle_relative)


def load_subset(root: str | Path) -> list[Sample]:
    """The subset's ``labels.csv`` rows. Also reads the product's feedback export
    (``manage.py export_feedback --out-dir``, ``ml.training.feedback``), a superset of this
    layout whose ``has_mask`` column marks films with a true label but no outline."""
    root = Path(root)
    samples = []
    with open(root / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            has_mask = row.get("has_mask", "1") == "1"
            samples.append(
                Sample(
                    image_id=row["image_id"],
                    image_path=root / row["image"],
                    patient_id=row["patient_id"],
                    has_pneumothorax=row["has_pneumothorax"] == "1",
                    mask_path=root / row["mask"] if has_mask else None,
                    has_mask=has_mask,
                )
            )
    return samples


def read_rle_csv(path: str | Path) -> dict[str, list[str]]:
    """ImageId -> its annotation rows (one per instance; ``-1`` for none)."""
    rows: dict[str, list[str]] = defaultdict(list)
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader)]
        id_col, rle_col = header.index("ImageId"), header.index("EncodedPixels")
        for row in reader:
            if row:
                rows[row[id_col].strip()].append(row[rle_col].strip())
    return rows


def read_patient_csv(path: str | Path) -> dict[str, str]:
    """``image_id,patient_id`` rows -> a mapping (e.g. the NIH patient numbers of the images)."""
    with open(path, newline="") as handle:
        return {row["image_id"].strip(): row["patient_id"].strip() for row in csv.DictReader(handle)}


def load_siim(dicom_root: str | Path, rle_csv: str | Path, encoding: str = "relative",
              patients_csv: str | Path | None = None) -> list[Sample]:
    """The official layout. ``encoding`` is ``relative`` (stage 1) or ``standard`` (stage 2).

    The patient of each image comes from ``patients_csv`` (``image_id,patient_id``) where given,
    else from the DICOM header's PatientID. The challenge anonymised PatientID per image, so
    without a patient CSV a split of that data is in effect by image: pass one (for example the
    NIH ChestX-ray14 patient numbers) to keep a patient's films on one side of the split.
    Images without a row in the annotation CSV are skipped: they have no ground truth.
    """
    patients = read_patient_csv(patients_csv) if patients_csv else {}
    import pydicom

    if encoding not in ("relative", "standard"):
        raise ValueError("encoding must be 'relative' or 'standard'")
    annotations = read_rle_csv(rle_csv)
    samples = []
    for path in sorted(Path(dicom_root).rglob("*.dcm")):
        image_id = path.stem
        if image_id not in annotations:
            continue
        header = pydicom.dcmread(path, stop_before_pixels=True)
        rows = tuple(annotations[image_id])
        samples.append(
            Sample(
                image_id=image_id,
                image_path=path,
                patient_id=patients.get(image_id) or str(header.get("PatientID", image_id)),
                has_pneumothorax=any(r not in ("", rle.EMPTY) for r in rows),
                rle_rows=rows,
                rle_relative=encoding == "relative",
            )
        )
    return samples


def load_folders(root: str | Path) -> list[Sample]:
    """``root/images/<name>.*`` with ``root/masks/<name>.png``; each image its own patient."""
    root = Path(root)
    samples = []
    for path in sorted((root / "images").iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        mask_path = root / "masks" / f"{path.stem}.png"
        if not mask_path.exists():
            raise FileNotFoundError(f"No mask for {path.name} at {mask_path}")
        has_pneumothorax = bool(np.asarray(Image.open(mask_path)).any())
        samples.append(Sample(path.stem, path, path.stem, has_pneumothorax, mask_path=mask_path))
    return samples


FEEDBACK_LABELS = {"present": True, "absent": False}  # "uncertain" says nothing


def load_feedback(csv_path: str | Path, media_root: str | Path | None = None) -> list[Sample]:
    """The images that clinicians labelled, from ``manage.py export_feedback``'s CSV (one row
    per review: image_id, case_id, file, ..., true_label, ...). ``file`` is relative to
    ``media_root`` (the product's PRIVATE_MEDIA_ROOT; default: the CSV's folder) or absolute.

    One sample per image, without a mask (``has_mask`` False). An image's label is its
    reviewers' definite one ("present" or "absent"); an image only ever called "uncertain", or
    called present by one reviewer and absent by another, is skipped: no ground truth. The
    case stands for the patient (a case is one patient's films), so splits keep a case whole."""
    csv_path = Path(csv_path)
    media_root = Path(media_root) if media_root is not None else csv_path.parent
    labels: dict[str, set[bool]] = defaultdict(set)
    rows: dict[str, dict] = {}
    with open(csv_path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            image_id = row["image_id"]
            rows.setdefault(image_id, row)
            if row["true_label"] in FEEDBACK_LABELS:
                labels[image_id].add(FEEDBACK_LABELS[row["true_label"]])
    return [Sample(image_id=image_id, image_path=media_root / row["file"],
                   patient_id=row.get("case_id") or image_id,
                   has_pneumothorax=labels[image_id] == {True}, has_mask=False)
            for image_id, row in rows.items() if len(labels[image_id]) == 1]


def load_dataset(layout: str, root: str | Path, rle_csv: str | Path | None = None,
                 encoding: str = "relative", patients_csv: str | Path | None = None,
                 media_root: str | Path | None = None) -> list[Sample]:
    """The samples of ``root`` in ``layout``; for ``feedback``, ``root`` is the CSV."""
    if layout == "feedback":
        return load_feedback(root, media_root)
    if layout == "subset":
        return load_subset(root)
    if layout == "siim":
        if rle_csv is None:
            raise ValueError("The siim layout needs --rle-csv")
        return load_siim(root, rle_csv, encoding, patients_csv)
    if layout == "folders":
        return load_folders(root)
    raise ValueError(f"Unknown layout {layout!r}: subset, siim, folders or feedback")


def split_by_patient(samples: list[Sample], validation_fraction: float = 0.2,
                     seed: int = 0, validation_patients: Iterable[str] | None = None,
                     ) -> tuple[list[Sample], list[Sample]]:
    """Patient-disjoint split, stratified by whether a patient has any positive image.

    Deterministic for a given seed and sample list, so that training and evaluation agree on
    which images are held out without passing lists around. ``validation_patients`` fixes the
    held-out patients instead: when a dataset grows, a recomputed split moves patients across
    (a new positive changes a patient's stratum), and models trained on the old split would
    then be scored on images they were trained on.
    """
    if validation_patients is not None:
        fixed = set(validation_patients)
        return ([s for s in samples if s.patient_id not in fixed],
                [s for s in samples if s.patient_id in fixed])
    by_patient: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_patient[sample.patient_id].append(sample)
    rng = random.Random(seed)
    validation_patients: set[str] = set()
    for positive in (True, False):
        group = sorted(p for p, s in by_patient.items() if any(x.has_pneumothorax for x in s) == positive)
        rng.shuffle(group)
        validation_patients.update(group[: round(len(group) * validation_fraction)])
    train = [s for s in samples if s.patient_id not in validation_patients]
    validation = [s for s in samples if s.patient_id in validation_patients]
    return train, validation


def held_out_samples(samples: list[Sample], config: dict) -> list[Sample]:
    """The validation images of the split a model was trained with: its ``training.config``
    (seed, val_fraction, limit, or the frozen validation_patients), recomputed on ``samples``."""
    limit = config.get("limit")
    pool = samples[:limit] if limit else samples
    _, validation = split_by_patient(pool, float(config.get("val_fraction", 0.2)),
                                     int(config.get("seed", 0)), config.get("validation_patients"))
    return validation


# The held-out patients of the shared subset, frozen as they were drawn from its first 1,874
# images (split_by_patient, 20%, seed 0). The 123 images added since belong to patients already
# in the subset, and each joins its patient's side; recomputing the split instead would move
# 135 of 243 patients, some of them into the training set of models already shipped.
SUBSET_VALIDATION_PATIENTS = Path(__file__).resolve().parents[1] / "splits" / "siim-acr-subset-validation-patients.txt"


def read_patient_list(path: str | Path) -> list[str]:
    return [line.strip() for line in Path(path).read_text().splitlines() if line.strip()]
