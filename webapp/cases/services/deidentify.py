"""De-identification of DICOM headers on ingest, after DICOM PS3.15 Annex E, the Basic
Application Level Confidentiality Profile (Table E.1-1, "Basic Prof." column).

What the clinician needs is read from the original header *before* this runs and kept in the
access-controlled case record (``CaseImage.metadata``, ``Case.study_metadata``: modality, study
date, view, sex, age, study/series UIDs...). The stored file keeps the pixels and the imaging
attributes the worker needs (rows, columns, photometric interpretation, pixel spacing, LUTs)
and loses identifying attributes.

Which attributes, and what the profile does to each, come from the standard's own table as
``dicom-anonymizer`` (Kitware) ships it, edition by edition (``PROFILE_TABLE``), applied by its
``anonymize_dataset`` (file meta, repeating groups such as curves and overlays, private tags).
Our hand-typed list covered about 250 of the table's some 650 attributes (detector and cassette
ids, station AE titles, instance creation dates, consulting physicians, GPS... were kept);
``docs/develop/deidentification.md`` has the comparison. Where the table allows a choice, we
take the one that leaves least behind, as the product always did:

- X, X/Z, X/D, X/Z/D, X/Z/U* (remove): removed (the library would write dummy values);
- Z, Z/D (empty): emptied, dates and times included (the library writes 00010101);
- D (dummy): the library's dummy value ("ANONYMIZED", 0...);
- U (replace UID), and a UID the table says to replace (D): a new UID under the 2.25 root from a
  keyed hash of the old one (``new_uid``), so the same study uploaded twice, by any process,
  still groups, and references inside the file stay consistent (the library's random UIDs are
  remembered in a per-process map that grows for ever);
- every private tag removed; the same rules applied inside every sequence that is kept;
- then Patient Identity Removed = YES and De-identification Method (Code Sequence 113100).

Not covered (documented limits): identifying text burned into the pixels, and attributes of
the profile's options (retain longitudinal dates, device identity...). Controlled by
``DICOM_DEIDENTIFY_ON_STORE`` (on by default).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import io
import uuid

from django.conf import settings

# The edition of PS3.15 Table E.1-1 that dicom-anonymizer ships (dicomfields_<edition>).
PROFILE_TABLE = "dicomfields_2026c"

METHOD = "DICOM PS3.15 E.1 Basic Application Level Confidentiality Profile"


class DeidentificationError(ValueError):
    pass


def new_uid(original: str) -> str:
    digest = hmac.new(settings.SECRET_KEY.encode() or b"triage", original.encode(),
                      hashlib.sha256).digest()
    return f"2.25.{uuid.UUID(bytes=digest[:16]).int}"


def _remove(dataset, tag) -> None:
    if tag in dataset:
        del dataset[tag]


def _empty(dataset, tag) -> None:
    element = dataset.get(tag)
    if element is not None:
        element.value = "" if isinstance(element.value, str) else None


def _replace_uid(dataset, tag) -> None:
    element = dataset.get(tag)
    if element is None or not element.value:
        return
    if element.VM > 1:
        element.value = [new_uid(str(v)) for v in element.value]
    else:
        element.value = new_uid(str(element.value))


def _is_uid(tag) -> bool:
    from pydicom.datadict import dictionary_VR

    try:
        return len(tag) == 2 and dictionary_VR((tag[0] << 16) | tag[1]) == "UI"
    except KeyError:  # not in pydicom's dictionary (a retired or newer attribute)
        return False


@functools.cache
def profile_rules() -> dict:
    """Tag -> action, for every attribute of the table (exact tags, and masked repeating
    groups as dicom-anonymizer writes them: group, element, group mask, element mask)."""
    from dicomanonymizer.dicomfields_selector import dicom_anonymization_database_selector
    from dicomanonymizer.simpledicomanonymizer import replace

    table = dicom_anonymization_database_selector(PROFILE_TABLE)
    actions = {"D_TAGS": replace, "Z_TAGS": _empty, "Z_D_TAGS": _empty, "X_TAGS": _remove,
               "X_Z_TAGS": _remove, "X_D_TAGS": _remove, "X_Z_D_TAGS": _remove,
               "X_Z_U_STAR_TAGS": _remove, "U_TAGS": _replace_uid}
    rules = {}
    for category, action in actions.items():
        for tag in table[category]:
            # A UID the table says to replace with a dummy (D) gets a keyed one, not a random one.
            rules[tag] = _replace_uid if category == "D_TAGS" and _is_uid(tag) else action
    return rules


def _deidentify(dataset) -> None:
    from dicomanonymizer.simpledicomanonymizer import anonymize_dataset

    anonymize_dataset(dataset, delete_private_tags=True, base_rules_gen=profile_rules)
    # The library looks at a dataset's own attributes; a sequence it kept may hold more.
    for element in list(dataset):
        if element.VR == "SQ":
            for item in element.value or []:
                _deidentify(item)


def deidentify_dicom(data: bytes) -> bytes:
    """The DICOM file with its header de-identified; the pixel data are untouched."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
        _deidentify(dataset)
        meta = getattr(dataset, "file_meta", None)
        if meta is not None and "SOPInstanceUID" in dataset:
            meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.PatientIdentityRemoved = "YES"
        dataset.DeidentificationMethod = METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator = "113100", "DCM"
        code.CodeMeaning = "Basic Application Confidentiality Profile"
        dataset.DeidentificationMethodCodeSequence = Sequence([code])
        out = io.BytesIO()
        dataset.save_as(out, enforce_file_format=False)
    except Exception as exc:  # never store an identified file because de-identification broke
        raise DeidentificationError(f"the DICOM header could not be de-identified ({exc})") from exc
    return out.getvalue()
