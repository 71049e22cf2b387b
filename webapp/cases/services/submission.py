"""Submitting a case: the one entry point for every interface that brings X-rays in (the upload
page, the REST API, later a DICOM listener), so that they refuse and accept the same things.

The interface has parsed its request (form, serializer, association) into files, a client
address for the audit row, an optional client reference and an optional team; what it adds on
top (an API batch, an idempotency key) is its own business."""

from __future__ import annotations

from dataclasses import dataclass

from webapp.cases.models import Case
from webapp.cases.services import patients
from webapp.cases.services.teams import submission_team
from webapp.cases.services.uploads import (
    DuplicateReference,
    UploadRejected,
    ValidatedUpload,
    store_case,
    validate_uploads,
)

REFERENCE_MAX_LENGTH = 200  # Case.client_reference


@dataclass(frozen=True)
class Submission:
    """A case ready to store: its files read and checked, its reference and team decided."""

    uploads: list[ValidatedUpload]
    reference: str
    team: object
    # The typed patient reference's key (services.patients), "" for none: never the reference.
    patient_key: str = ""


def submit_case(user, uploaded_files, client_address: str | None,
                client_reference: str | None = "", team=None,
                patient_reference: str | None = "") -> Case:
    """Create a case (its images, queued jobs and audit row) from ``uploaded_files``, in
    ``team``: the user's choice among their teams (services.teams.submission_team: a Team, an id
    or a name; None: their first team by name, none if they have none). ``prepare_case`` then
    ``store_submission``; raises what they raise."""
    return store_submission(user, prepare_case(user, uploaded_files, client_reference, team,
                                               patient_reference), client_address)


def prepare_case(user, uploaded_files, client_reference: str | None = "",
                 team=None, patient_reference: str | None = "") -> Submission:
    """Every check of a submission, with no transaction of its own: interfaces call it outside
    any transaction, so that reading the files (seconds for a large or hostile one) never holds
    a database lock (on SQLite, the one write lock every request waits for; issue 21).

    Raises DuplicateReference, with the existing case's id, when the user already has a case
    with this reference: checked here before any file is read, since reading and de-identifying
    up to MAX_UPLOAD_FILES large DICOMs is the expensive part; the unique constraint stays the
    backstop for two submissions racing with one reference. Raises UploadRejected (with
    messages for the user) for files that are refused, and TeamRefused (one of those) for a team
    that is not the user's, also before any file is read. ``patient_reference``: the patient,
    as the uploader typed it (it overrides the DICOMs' PatientID; services.patients); a bad one
    raises UploadRejected before any file is read (the interfaces' fields refuse it first)."""
    try:
        patient_key = patients.reference_key(patient_reference)
    except patients.BadReference as exc:
        raise UploadRejected([f"Patient reference: {exc}"]) from exc
    reference = (client_reference or "").strip()[:REFERENCE_MAX_LENGTH]
    if reference:
        existing = Case.objects.filter(owner=user, client_reference=reference).values_list(
            "pk", flat=True).first()
        if existing is not None:
            raise DuplicateReference(reference, existing)
    chosen = submission_team(user, team)
    return Submission(uploads=validate_uploads(uploaded_files), reference=reference, team=chosen,
                      patient_key=patient_key)


def store_submission(user, submission: Submission, client_address: str | None) -> Case:
    """The case of a prepared submission, in one short transaction (``uploads.store_case``)."""
    return store_case(user, submission.uploads, client_address, submission.reference,
                      team=submission.team, patient_key=submission.patient_key)
