"""Accepting uploads: each file is checked by its content (services.checks: the ml package's
reader decodes it fully, within memory and time limits; a DICOM whose header names a lateral or
other non-frontal view is refused), then the case, its images, their jobs and the audit row are written in one
transaction; the jobs are sent to the queue only once that transaction has committed.

Interfaces do not call ``create_case`` themselves: they call ``submission.submit_case``, which
refuses a reference already in use before any file is read."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from ml.core.errors import XRayError
from ml.core.reading import XRay
from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Case, CaseImage, Job
from webapp.cases.services import files, patients, rendering
from webapp.cases.services.checks import read_checked
from webapp.cases.services.deidentify import DeidentificationError, deidentify_dicom
from webapp.cases.services.jobs import enqueue_job_on_commit


class UploadRejected(ValueError):
    """The upload is refused; ``messages`` are shown to the user as they are."""

    def __init__(self, messages: list[str]):
        super().__init__("; ".join(messages))
        self.messages = messages


class DuplicateReference(UploadRejected):
    """The user already has a case with this client reference (unique per owner). ``case_id``:
    that case, when known (not when a concurrent upload has just taken the reference)."""

    def __init__(self, reference: str, case_id=None):
        super().__init__([f"You already have a case with the reference {reference!r}."])
        self.reference, self.case_id = reference, case_id


@dataclass(frozen=True)
class ValidatedUpload:
    name: str
    data: bytes  # what is stored: a DICOM is de-identified first (DICOM_DEIDENTIFY_ON_STORE)
    xray: XRay
    sha256: str
    # A browser cannot show DICOM: an 8-bit PNG so the page shows the X-ray at once. Encoded here,
    # not while the case is stored: a large film takes a second, and storing holds the write lock.
    preview: bytes
    # The keyed hash of a DICOM's PatientID and issuer, read before de-identification empties
    # them (services.patients); "" for PNG/JPEG or a header without one.
    patient_key: str = ""


def clean_filename(name: str | None) -> str:
    """A display name: no directories, no control characters, bounded length."""
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in unicodedata.normalize("NFC", name)
                   if unicodedata.category(ch)[0] != "C")
    name = re.sub(r"\s+", " ", name).strip() or "unnamed"
    if len(name) > 200:
        stem, dot, extension = name.rpartition(".")
        name = (stem[:190] + "." + extension[:9]) if dot and len(extension) < 10 else name[:200]
    return name


def validate_upload(uploaded_file) -> ValidatedUpload:
    """Read one uploaded file (a Django UploadedFile or anything with .name/.size/.read()).
    Raises UploadRejected with a message naming the file."""
    name = clean_filename(getattr(uploaded_file, "name", ""))
    limit = settings.MAX_UPLOAD_FILE_BYTES
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > limit:
        raise UploadRejected([f"{name}: the file is larger than the limit of {limit // 2**20} MB."])
    data = uploaded_file.read(limit + 1)
    if len(data) > limit:
        raise UploadRejected([f"{name}: the file is larger than the limit of {limit // 2**20} MB."])
    try:
        xray = read_checked(data)
    except XRayError as exc:
        raise UploadRejected([f"{name}: {exc}"]) from exc
    sha256 = hashlib.sha256(data).hexdigest()  # of the file as received
    # The patient, from the header as received: de-identification below empties PatientID.
    patient_key = patients.dicom_patient_key(data) if xray.source_format == "dicom" else ""
    if xray.source_format == "dicom" and settings.DICOM_DEIDENTIFY_ON_STORE:
        # The case record keeps the display fields read above; the stored file loses identity.
        try:
            data = deidentify_dicom(data)
        except DeidentificationError as exc:
            raise UploadRejected([f"{name}: {exc}"]) from exc
    return ValidatedUpload(name=name, data=data, xray=xray, sha256=sha256,
                           preview=rendering.preview_png(xray.pixels), patient_key=patient_key)


def validate_uploads(uploaded_files) -> list[ValidatedUpload]:
    """All or nothing: every problem is reported, and one bad file refuses the whole case."""
    uploads = list(uploaded_files)
    if not uploads:
        raise UploadRejected(["Choose at least one X-ray file."])
    if len(uploads) > settings.MAX_UPLOAD_FILES:
        raise UploadRejected([f"At most {settings.MAX_UPLOAD_FILES} files per case."])
    validated, problems = [], []
    for uploaded in uploads:
        try:
            validated.append(validate_upload(uploaded))
        except UploadRejected as exc:
            problems.extend(exc.messages)
    if problems:
        raise UploadRejected(problems)
    return validated


def create_case(user, uploaded_files, client_address: str | None,
                client_reference: str | None = None, team=None) -> Case:
    """Create a case from uploaded files, in ``team`` (already checked to be one of the user's,
    by submission.submit_case), and queue one job per image. Raises UploadRejected
    (DuplicateReference when the unique constraint on the reference refuses the case)."""
    return store_case(user, validate_uploads(uploaded_files), client_address, client_reference,
                      team=team)


def store_case(user, validated: list[ValidatedUpload], client_address: str | None,
               client_reference: str | None = None, team=None,
               audit_detail: dict | None = None, patient_key: str = "") -> Case:
    """The case, its images, their queued jobs and the audit row, from uploads already checked
    (``validate_upload``), in one transaction. ``audit_detail``: what the interface adds to the
    audit row (the DICOM node a study came from, say). ``patient_key``: of the patient reference
    the uploader typed (services.patients.reference_key), which overrides the DICOMs' own."""
    client_reference = (client_reference or "").strip()[:200]
    first_dicom = next((v.xray.metadata for v in validated if v.xray.source_format == "dicom"), {})
    patient_key = patients.case_patient_key(patient_key, [v.patient_key for v in validated])
    # Files are written before the rows commit (the opposite order could leave rows pointing at
    # nothing); if this block fails, the files it wrote are removed again.
    written: list[str] = []
    try:
        with transaction.atomic():
            case = Case.objects.create(owner=user, team=team, client_reference=client_reference,
                                       study_metadata=dict(first_dicom), patient_key=patient_key)
            images = _store_images(case, validated, written)
            audit.record(user, Action.UPLOAD, case, client_address, detail={
                "images": _audit_images(images),
                "team": team.name if team else None,  # who else may see it, from now on
                # Whether the films link to a patient, and by what; never the key or identifier.
                "patient": _patient_source(patient_key, validated),
                **(audit_detail or {}),
            })
    except BaseException as exc:
        files.remove(written)
        if isinstance(exc, IntegrityError) and client_reference:
            # The reference is taken (two requests raced with it): the unique constraint decided.
            raise DuplicateReference(client_reference) from exc
        raise
    return case


def add_images(case: Case, validated: list[ValidatedUpload], user, client_address: str | None,
               audit_detail: dict | None = None) -> list[CaseImage]:
    """More images of the same study for an existing case (instances of one study that arrive
    one by one over DICOM), each with its queued job, and an audit row, in one transaction."""
    written: list[str] = []
    try:
        with transaction.atomic():
            locked = Case.objects.select_for_update().get(pk=case.pk)  # positions stay unique
            if not locked.patient_key:  # a study's first instance may have had no PatientID
                locked.patient_key = patients.case_patient_key("", [v.patient_key for v in validated])
                if locked.patient_key:
                    locked.save(update_fields=["patient_key"])
            images = _store_images(locked, validated, written, start=locked.images.count())
            audit.record(user, Action.UPLOAD, locked, client_address, detail={
                "images": _audit_images(images), "added_to_case": True, **(audit_detail or {})})
    except BaseException:
        files.remove(written)
        raise
    return images


def _store_images(case: Case, validated: list[ValidatedUpload], written: list[str],
                  start: int = 0) -> list[CaseImage]:
    images = []
    for position, upload in enumerate(validated, start=start):
        image = _store_image(case, position, upload, written)
        job = Job.objects.create(image=image)
        enqueue_job_on_commit(job.pk)
        images.append(image)
    return images


def _patient_source(patient_key: str, validated: list[ValidatedUpload]) -> str | None:
    if not patient_key:
        return None
    return "dicom" if any(v.patient_key == patient_key for v in validated) else "reference"


def _audit_images(images: list[CaseImage]) -> list[dict]:
    return [{"id": str(i.pk), "name": i.original_name, "sha256": i.sha256,
             "format": i.source_format} for i in images]


def _store_image(case: Case, position: int, upload: ValidatedUpload, written: list[str]) -> CaseImage:
    """``written``: the names of the files stored, for the caller to remove on failure."""
    xray = upload.xray
    image = CaseImage(
        case=case, position=position, original_name=upload.name,
        source_format=xray.source_format, content_type=files.CONTENT_TYPES[xray.source_format],
        size_bytes=len(upload.data), sha256=upload.sha256, width=xray.width, height=xray.height,
        pixel_spacing_mm=list(xray.pixel_spacing_mm) if xray.pixel_spacing_mm else None,
        metadata=dict(xray.metadata),
        study_date=patients.study_date(xray.metadata),  # the original header's (read above)
    )
    image.original.name = files.save(files.original_name(image, xray.source_format), upload.data)
    written.append(image.original.name)
    image.preview.name = files.save(files.preview_name(image), upload.preview)
    written.append(image.preview.name)
    image.save()
    return image
