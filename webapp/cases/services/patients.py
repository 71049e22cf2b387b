"""Patients, kept pseudonymous (issue 22): which films are of one patient, without the database
ever holding the patient's identifier.

A case's ``patient_key`` is a keyed hash, HMAC-SHA256 with the site secret PATIENT_KEY_SECRET
(settings/_patients.py), of the patient identifier:

- for a DICOM, its header's PatientID together with IssuerOfPatientID, read from the file as
  received, before de-identification empties them (``dicom_patient_key``, called by
  ``uploads.validate_upload``, the path of the upload page, the API, STOW-RS and the DICOM
  listener alike);
- for a PNG or JPEG, or to override the header, the ``patient_reference`` that the uploader
  types (``reference_key``).

A typed reference is hashed in the *same* space as a DICOM PatientID, with the site's
PATIENT_REFERENCE_ISSUER as its issuer: what a clinician types is the hospital number, the one
the PACS writes into PatientID, and they expect a PNG follow-up typed with it to link to the
patient's DICOM films. A separate namespace would keep them apart for ever.

The identifier is compared exactly, after removing the spaces around it (DICOM pads values with
spaces; a form keeps what was typed): letters keep their case, since PatientID is case-sensitive
and two hospital numbers that differ only by case would otherwise be one patient. Linking two
patients wrongly (a comparison with another patient's film) is worse than not linking one.

Without a secret (a production site whose operator did not set one: check ``patients.E001``),
films are stored unlinked rather than refused: the product still reads them."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import logging
import unicodedata

from django.conf import settings
from django.core import checks

from webapp.cases.services.text import text_problem

log = logging.getLogger(__name__)

# DICOM's Patient ID is an LO: at most 64 characters. A hospital number is far shorter.
REFERENCE_MAX_LENGTH = 64
# The version of the encoding below: a new one would give every patient a new key.
_ENCODING = b"pneumothorax-triage patient v1\n"


# Identifiers that name no one: what an emergency registration or a modality writes when it does
# not know the patient. Linked, they would make every unknown patient one patient, and compare a
# film with a stranger's. Compared after the canonical form, ignoring case.
PLACEHOLDER_IDENTIFIERS = frozenset({
    "unknown", "unk", "anonymous", "anon", "none", "null", "n/a", "na", "-", "--", "?", "0",
    "000000", "0000000000", "noid", "no id", "patient", "test",
})


class BadReference(ValueError):
    """A patient reference that cannot be used; the message says why, never what was typed."""


def patient_key(identifier: str, issuer: str = "") -> str:
    """The hex HMAC-SHA256 of (issuer, identifier), or "" for an empty or placeholder identifier
    (no patient known: PLACEHOLDER_IDENTIFIERS) and where the site has no PATIENT_KEY_SECRET. The two strings are encoded as a JSON
    array, so no pair of values runs into another ("A" + "BC" is not "AB" + "C")."""
    identifier, issuer = _canonical(identifier), _canonical(issuer)
    secret = getattr(settings, "PATIENT_KEY_SECRET", "") or ""
    if not identifier or identifier.lower() in PLACEHOLDER_IDENTIFIERS:
        return ""
    if not secret:
        log.warning("PATIENT_KEY_SECRET is not set: a film is stored without its patient link")
        return ""
    message = _ENCODING + json.dumps([issuer, identifier], ensure_ascii=False).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def _canonical(value) -> str:
    return unicodedata.normalize("NFC", str(value or "")).strip(" \t\r\n\x00")


def reference_problem(reference: str) -> str | None:
    """Why ``reference`` (as typed) cannot name a patient; None when it can. The words never
    repeat the reference: they are shown and may be logged."""
    problem = text_problem(reference)
    if problem is not None:
        return problem
    if len(reference.strip()) > REFERENCE_MAX_LENGTH:
        return (f"at most {REFERENCE_MAX_LENGTH} characters are allowed (the limit of a DICOM "
                "Patient ID).")
    return None


def reference_key(reference: str | None) -> str:
    """The key of a typed patient reference ("" for none), in the DICOM PatientIDs' space
    (see the module's docstring). Raises BadReference for one that ``reference_problem``
    refuses."""
    reference = reference or ""
    problem = reference_problem(reference)
    if problem is not None:
        raise BadReference(problem)
    return patient_key(reference, settings.PATIENT_REFERENCE_ISSUER)


def dicom_patient_key(data: bytes) -> str:
    """The key of a DICOM file's PatientID and IssuerOfPatientID ("" where it has no PatientID),
    from the file as received. Called only after the file was read in full (checks.read_checked),
    so its header is known to be readable; a Deflated one is inflated within a bound."""
    from ml.core.limits import read_dicom_header

    try:
        header = read_dicom_header(data)
    except Exception:  # pydicom raises many types; a header it cannot read names no patient
        return ""
    return patient_key(str(header.get("PatientID", "") or ""),
                       str(header.get("IssuerOfPatientID", "") or ""))


def study_date(metadata: dict) -> datetime.date | None:
    """The header's StudyDate (YYYYMMDD, as ml.core.reading keeps it in the display fields),
    or None where there is none or it is no real date."""
    value = str((metadata or {}).get("StudyDate", "") or "").strip()
    try:
        return datetime.datetime.strptime(value, "%Y%m%d").date() if len(value) == 8 else None
    except ValueError:
        return None


def case_patient_key(reference_key_: str, dicom_keys: list[str]) -> str:
    """A new case's key: the typed reference's where one was given (it overrides the headers);
    else the DICOMs' key when they agree. DICOMs of different patients in one case (a mistake
    at the sender) link the case to nobody: a wrong link would compare films of two patients."""
    if reference_key_:
        return reference_key_
    keys = {key for key in dicom_keys if key}
    return keys.pop() if len(keys) == 1 else ""


@checks.register(checks.Tags.security, deploy=True)
def check_secret(app_configs=None, **kwargs):
    """A site that others reach (``check --deploy``) must have its own patient key secret."""
    if getattr(settings, "PATIENT_KEY_SECRET", ""):
        return []
    return [checks.Error(
        "PATIENT_KEY_SECRET is not set: films cannot be linked to their patients.",
        hint="Set it to a long random string, kept for the life of the data (docs/use/follow-up.md).",
        id="patients.E001")]
