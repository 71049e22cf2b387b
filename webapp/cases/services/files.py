"""The files of a case in private storage: their names, writing and removing them, and serving
them to the pages and the API alike.

Names are built here only: ``cases/<case>/<image>/<what>.<ext>``, by id, never by the uploaded
file's name (which is for display). Results carry the run that made them
(``mask-<run token>.png``), so a superseded run never overwrites the files of the run that won,
and a DICOM result built for one result is never served for another.

Serving: the caller has found the image through ``access`` (a stranger's is a 404 before this
runs); ``serve`` writes the audit row in the request's transaction, then streams the file."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.db import transaction
from django.http import FileResponse

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import CaseImage, Job, JobStatus
from webapp.cases.storage import private_storage

EXTENSIONS = {"dicom": "dcm", "png": "png", "jpeg": "jpg"}
CONTENT_TYPES = {"dicom": "application/dicom", "png": "image/png", "jpeg": "image/jpeg"}
RESULT_KINDS = ("mask", "overlay")  # PNGs, written by the worker
DICOM_KINDS = ("dicom-seg", "dicom-sc", "dicom-sr")  # built on first request (services.results)
# Always an attachment, whatever the caller asks: an upload (maybe DICOM) is never rendered
# inline, and a DICOM result is for a viewer, not a browser.
ALWAYS_DOWNLOADED = frozenset({"original", *DICOM_KINDS})


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


# --- serving ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class StoredFile:
    name: str
    content_type: str
    filename: str  # what the browser saves it as


def stored_file(image: CaseImage, kind: str) -> StoredFile:
    """The file ``kind`` of ``image``. Raises NotAvailable."""
    stem = image.original_name.rsplit(".", 1)[0]
    if kind in ("original", "preview"):
        field = getattr(image, kind)
        if not field.name:
            raise NotAvailable("Not available.")
        if kind == "original":
            return StoredFile(field.name, image.content_type, image.original_name)
        return StoredFile(field.name, "image/png", f"{stem}-preview.png")
    if kind in RESULT_KINDS:
        job: Job = image.job
        field = getattr(job, kind)
        if job.status != JobStatus.DONE or not field.name:
            raise NotAvailable("Not available yet: the image has no result.")
        return StoredFile(field.name, "image/png", f"{stem}-{kind}.png")
    if kind in DICOM_KINDS:
        # Imported here: highdicom is needed only by the DICOM result kinds.
        from webapp.cases.services import results

        short = kind.removeprefix("dicom-")
        try:
            name = results.result_file(image, short)
        except results.NotAvailable as exc:
            raise NotAvailable(f"Not available: {exc}.") from exc
        return StoredFile(name, "application/dicom", f"{stem}-{short}.dcm")
    raise NotAvailable("Not available.")


def serve(user, image: CaseImage, kind: str, *, download: bool, client_address: str | None,
          detail: dict | None = None, audited: bool = True) -> FileResponse:
    """The file as a response, after its audit row (``download`` or ``view_image``); with
    ``audited`` false, none: the case page's row already names this image (``cases.views``).
    Raises NotAvailable (no such file, or it is missing from storage)."""
    stored = stored_file(image, kind)
    download = download or kind in ALWAYS_DOWNLOADED
    if audited or download:
        audit.record(user, Action.DOWNLOAD if download else Action.VIEW_IMAGE, image, client_address,
                     detail={**(detail or {}), "kind": kind, "case": str(image.case_id)})
    try:
        handle = private_storage.open(stored.name, "rb")
    except FileNotFoundError as exc:
        raise NotAvailable("The file is missing.") from exc
    response = FileResponse(handle, as_attachment=download, filename=stored.filename,
                            content_type=stored.content_type)
    response["Cache-Control"] = "private, no-store"  # patient images: never in a shared cache
    return response
