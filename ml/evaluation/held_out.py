"""Which images a model is evaluated on: the patients it was trained without, halved.

The held-out images are the validation patients of the split recorded in the model file
(``training.config``: seed, val_fraction, limit, or the frozen patient list), recomputed with
``ml.training.datasets.split_by_patient`` on the original dataset, and checked against the
``validation_ids.txt`` that ``ml.train`` wrote beside the model where there is one. They are
split again, by patient, into the calibration half (which chooses the operating point) and the
test half (which gives every reported figure).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from ml.training.datasets import (SUBSET_VALIDATION_PATIENTS, Sample, held_out_samples, read_patient_list,
                                  split_by_patient)


def verified_held_out(samples: list[Sample], config: dict, layout: str, ids_path: Path,
                      patients_file: str | None = None) -> tuple[list[Sample], str | None]:
    """The held-out images, and the ``validation_ids.txt`` they were checked against (None where
    there is none). Refuses (SystemExit) where they differ: a wrong dataset for this model would
    score it on its own training images."""
    if "validation_patients" not in config:
        # Models trained before the split was frozen held out exactly these patients; a split
        # redrawn on the grown subset would score them on images they were trained on.
        patients_file = patients_file or (SUBSET_VALIDATION_PATIENTS if layout == "subset" else None)
        if patients_file:
            config = {**config, "validation_patients": read_patient_list(patients_file)}
    held_out = held_out_samples(samples, config)
    if not ids_path.is_file():
        return held_out, None
    expected = ids_path.read_text().split()
    if sorted(expected) != sorted(s.image_id for s in held_out):
        raise SystemExit(f"The recomputed held-out images differ from {ids_path}: wrong --root/"
                         "--layout for this model? Refusing to evaluate on training images.")
    return held_out, str(ids_path)


# The halves are drawn with one fixed seed, not the training run's: candidates trained with
# other seeds on the same held-out patients must be scored on the same calibration half as the
# model they would replace, and must never see its test half. (Stage 8 of issue 26 was trained
# with --seed 1 and, while the seed chose the halves, scored on another division of the
# held-out patients than the stage-7 model it was compared with.)
CALIBRATION_SPLIT_SEED = 1


def calibration_test_split(samples: list[Sample]) -> tuple[list[Sample], list[Sample]]:
    """50/50 by patient, stratified by whether a patient has a positive image; the same halves
    for every model held out on the same patients, whatever seed it was trained with."""
    calibration, test = split_by_patient(samples, 0.5, CALIBRATION_SPLIT_SEED)
    return calibration, test


def limit_samples(samples: list[Sample], limit: int) -> list[Sample]:
    """About ``limit`` images, whole patients, alternating positive and negative patients."""
    by_patient: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_patient[sample.patient_id].append(sample)
    positive = sorted(p for p, s in by_patient.items() if any(x.has_pneumothorax for x in s))
    negative = sorted(p for p in by_patient if p not in set(positive))
    chosen: set[str] = set()
    count = 0
    for index in range(max(len(positive), len(negative))):
        for group in (positive, negative):
            if index < len(group) and count < limit:
                chosen.add(group[index])
                count += len(by_patient[group[index]])
    return [s for s in samples if s.patient_id in chosen]
