"""Where things are: the repository, the folder tests write artifacts to, and the shared SIIM-ACR
subset (``../shared/data/siim-acr-subset`` next to the repository; not in it)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
SHARED_DATA = (REPO / ".." / "shared" / "data" / "siim-acr-subset").resolve()
SHARED_IMAGES = SHARED_DATA / "images"


def subset_images(extension: str) -> list[Path]:
    """The shared subset's images with this extension (dcm, png, jpg), sorted by name."""
    return sorted(SHARED_IMAGES.glob(f"*.{extension}"))


def subset_image(extension: str, index: int = 0) -> Path:
    """The ``index``-th image of the shared subset with this extension; a test fails without it."""
    paths = subset_images(extension)
    if len(paths) <= index:
        import pytest

        pytest.fail(f"No *.{extension} (number {index}) in {SHARED_IMAGES}: the shared data set "
                    "is required")
    return paths[index]


def first_rows(labels: list[dict], suffix: str, positive: bool, count: int = 1) -> list[dict]:
    """The first ``count`` rows of labels.csv for images ending in ``suffix`` with (``positive``)
    or without a pneumothorax."""
    rows = [r for r in labels if r["image"].endswith(suffix) and (r["has_pneumothorax"] == "1") == positive]
    return rows[:count]
