"""The files of a case in private storage: their names, writing and removing them (serving them:
``services.serving``, which builds the DICOM results through ``services.results``; this module
imports neither, so the imports point one way: serving -> results -> files).

Names are built here only: ``cases/<case>/<image>/<what>.<ext>``, by id, never by the uploaded
file's name (which is for display). Results carry the run that made them
(``mask-<run token>.png``), so a superseded run never overwrites the files of the run that won,
and a DICOM result built for one result is never served for another."""

from __future__ import annotations

from collections.abc import Iterable

from django.core.files.base import ContentFile
from django.db import transaction

from webapp.cases.models import CaseImage
from webapp.cases.storage import private_storage

EXTENSIONS = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}
CONTENT_TYPES = {"dicom": "application/dicom", "png": "image/png", "jpeg": "image/jpeg"}


class NotAvailable(Exception):
    """No such file for this image (not yet, not for this input, or lost): the caller's 404."""


# --- names -----------------------------------------------------------------------------------

def image_folder(image: CaseImage) -> str:
    return f"cases/{image.case_id}/{image.pk}"


def original_name(image: CaseImage, source_format: str) -> str:
    return f"{image_folder(image)}/original.{EXTENSIONS[source_format]}"


def preview_name(image: CaseImage) -> str:
    return f"{image_folder(image)}/preview.png"


def result_name(image: CaseImage, kind: str, run_token: str, extension: str = "png") -> str:
    """A file of one run's result: ``mask``/``overlay`` (PNG), ``seg``/``sc``/``sr`` (DICOM)."""
    return f"{image_folder(image)}/{kind}-{run_token[:12]}.{extension}"


def image_files(image: CaseImage) -> list[str]:
    """Every file an image may have, the DICOM results of its current run included."""
    names = [image.original.name, image.preview.name]
    job = getattr(image, "job", None)
    if job is not None:
        names += [job.mask.name, job.overlay.name]
        if job.run_token:
            names += [result_name(image, kind, job.run_token, "dcm")
                      for kind in ("seg", "sc", "sr")]
    return [name for name in names if name]


def case_folder_files(case_id) -> list[str]:
    """Every file under the case's folder, named or not (an earlier run's results): what the
    retention policy sweeps so that nothing of a deleted case stays on disk."""
    found, folders = [], [f"cases/{case_id}"]
    while folders:
        folder = folders.pop()
        try:
            subfolders, names = private_storage.listdir(folder)
        except FileNotFoundError:
            continue
        folders += [f"{folder}/{sub}" for sub in subfolders]
        found += [f"{folder}/{name}" for name in names]
    return found


# --- reading and writing ---------------------------------------------------------------------

def save(name: str, data: bytes) -> str:
    """Write ``data`` under ``name`` (or a free variant of it); returns the name written."""
    return private_storage.save(name, ContentFile(data))


def read(name: str) -> bytes:
    with private_storage.open(name, "rb") as handle:
        return handle.read()


def exists(name: str) -> bool:
    return private_storage.exists(name)


def remove(names: Iterable[str]) -> None:
    """Best effort: a file that cannot be removed must not turn the action into an error."""
    for name in names:
        if not name:
            continue
        try:
            private_storage.delete(name)
        except OSError:
            pass


def remove_on_commit(names: Iterable[str]) -> None:
    """Remove once the transaction has committed, so a rolled-back action keeps its files."""
    names = list(names)
    transaction.on_commit(lambda: remove(names), robust=True)
