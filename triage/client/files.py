"""The local files: which are X-rays, their content hash (the upload's Idempotency-Key), and
the name each one's mask is saved under."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

EXTENSIONS = {".dcm", ".dicom", ".png", ".jpg", ".jpeg"}
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


def find_files(folder: Path, exclude: Path | None = None) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        root_path = Path(root)
        if exclude is not None and (root_path == exclude or exclude in root_path.parents):
            continue
        for name in sorted(names):
            if not name.startswith(".") and Path(name).suffix.lower() in EXTENSIONS:
                found.append(root_path / name)
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def mask_name(relative: str) -> str:
    return relative.replace(os.sep, "__").rsplit(".", 1)[0] + "-mask.png"
