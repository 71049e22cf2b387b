"""Fixtures for the ml/ tests: the shared data (skipped cleanly where it is absent), DICOMs
built on the spot, and one tiny dataset -> cache -> model chain shared by the whole session.

These tests need no database and no Django; they run under the project's pytest settings or
with ``python -m pytest tests/ml -p no:django``.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from tests.support.data import SHARED_DATA, first_rows

TINY_SIZE = 128  # px; divisible by 32, as the U-Net needs


def pytest_configure(config):
    config.addinivalue_line("markers", "ddp: torchrun with 2 CPU processes (gloo), about 30 s")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "labels.csv").is_file():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def labels(shared_data) -> list[dict]:
    with open(shared_data / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="session")
def pick():
    return first_rows


@pytest.fixture(scope="session")
def make_dicom():
    """Build a DICOM file's bytes from pixels; keyword arguments become header elements."""
    from tests.support.dicom import dicom_bytes

    return dicom_bytes


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, labels, shared_data) -> Path:
    """A ``folders`` layout of 16 shared images (8 positive, 8 negative, all three formats),
    as symlinks."""
    rows = (first_rows(labels, ".dcm", True, 2) + first_rows(labels, ".jpg", True, 5)
            + first_rows(labels, ".png", True, 1) + first_rows(labels, ".dcm", False, 6)
            + first_rows(labels, ".jpg", False, 2))
    root = tmp_path_factory.mktemp("tiny-dataset")
    (root / "images").mkdir()
    (root / "masks").mkdir()
    for row in rows:
        image = shared_data / row["image"]
        (root / "images" / image.name).symlink_to(image)
        (root / "masks" / f"{row['image_id']}.png").symlink_to(shared_data / row["mask"])
    return root


@pytest.fixture(scope="session")
def tiny_cache(tiny_dataset, tmp_path_factory) -> Path:
    from ml import cache

    out = tmp_path_factory.mktemp("tiny-cache")
    cache.main(["--layout", "folders", "--root", str(tiny_dataset), "--size", str(TINY_SIZE),
                "--workers", "1", "--out", str(out)])
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_cache, tmp_path_factory) -> Path:
    """One epoch of ml.train on the tiny cache (half of the patients held out)."""
    from ml import train

    out = tmp_path_factory.mktemp("tiny-run")
    path = train.main(["--cache", str(tiny_cache), "--out", str(out), "--encoder", "tf_efficientnet_lite0",
                       "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.5", "--quiet"])
    assert path.is_file()
    return path
