"""Serving the files of a case to the pages and the API alike: the caller has found the image
through ``access`` (a stranger's is a 404 before this runs); ``serve`` writes the audit row in
the request's transaction, then streams the file. A DICOM result is built on its first request
(``services.results``). Raises ``files.NotAvailable`` (the caller's 404)."""

from __future__ import annotations

from dataclasses import dataclass

from django.http import FileResponse

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import CaseImage, Job, JobStatus
from webapp.cases.services import files
from webapp.cases.storage import private_storage

RESULT_KINDS = ("mask", "overlay")  # PNGs, written by the worker
DICOM_KINDS = ("dicom-seg", "dicom-sc", "dicom-sr")  # built on first request (services.results)
# Always an attachment, whatever the caller asks: an upload (maybe DICOM) is never rendered
# inline, and a DICOM result is for a viewer, not a browser.
ALWAYS_DOWNLOADED = frozenset({"original", *DICOM_KINDS})


@dataclass(frozen=True)
class StoredFile:
    name: str
    content_type: str
    filename: str  # what the browser saves it as


def stored_file(image: CaseImage, kind: str) -> StoredFile:
    """The file ``kind`` of ``image``. Raises files.NotAvailable."""
    stem = image.original_name.rsplit(".", 1)[0]
    if kind in ("original", "preview"):
        field = getattr(image, kind)
        if not field.name:
            raise files.NotAvailable("Not available.")
        if kind == "original":
            return StoredFile(field.name, image.content_type, image.original_name)
        return StoredFile(field.name, "image/png", f"{stem}-preview.png")
    if kind in RESULT_KINDS:
        job: Job = image.job
        field = getattr(job, kind)
        if job.status != JobStatus.DONE or not field.name:
            raise files.NotAvailable("Not available yet: the image has no result.")
        return StoredFile(field.name, "image/png", f"{stem}-{kind}.png")
    if kind in DICOM_KINDS:
        # Imported here: highdicom is needed only by the DICOM result kinds.
        from webapp.cases.services import results

        short = kind.removeprefix("dicom-")
        try:
            name = results.result_file(image, short)
        except results.NotAvailable as exc:
            raise files.NotAvailable(f"Not available: {exc}.") from exc
        return StoredFile(name, "application/dicom", f"{stem}-{short}.dcm")
    raise files.NotAvailable("Not available.")


def serve(user, image: CaseImage, kind: str, *, download: bool, client_address: str | None,
          detail: dict | None = None, audited: bool = True) -> FileResponse:
    """The file as a response, after its audit row (``download`` or ``view_image``); with
    ``audited`` false, none: the case page's row already names this image (``cases.views``).
    Raises files.NotAvailable (no such file, or it is missing from storage)."""
    stored = stored_file(image, kind)
    download = download or kind in ALWAYS_DOWNLOADED
    if audited or download:
        audit.record(user, Action.DOWNLOAD if download else Action.VIEW_IMAGE, image, client_address,
                     detail={**(detail or {}), "kind": kind, "case": str(image.case_id)})
    try:
        handle = private_storage.open(stored.name, "rb")
    except FileNotFoundError as exc:
        raise files.NotAvailable("The file is missing.") from exc
    response = FileResponse(handle, as_attachment=download, filename=stored.filename,
                            content_type=stored.content_type)
    response["Cache-Control"] = "private, no-store"  # patient images: never in a shared cache
    return response
