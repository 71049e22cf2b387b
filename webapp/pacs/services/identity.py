"""The original identity of an instance received over DICOM, kept until its results are back in
the PACS, and put back on the (de-identified) stored source when the results are built, so that
the PACS files them in the original patient and study next to the original image."""

from __future__ import annotations

import pydicom

from webapp.cases.services.dicom_attributes import DEIDENTIFICATION

# The Patient and General Study modules, and the original instance's own UIDs (which
# de-identification replaced: a SEG must reference the instance the PACS holds).
RETURN_ATTRIBUTES = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
    "PatientAge", "OtherPatientIDs",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber",
    "ReferringPhysicianName", "StudyDescription",
    "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID", "FrameOfReferenceUID",
)


def return_identity(dataset: pydicom.Dataset) -> dict[str, str]:
    """The attributes of ``dataset`` (the instance as received) the results will need."""
    identity = {}
    for keyword in RETURN_ATTRIBUTES:
        value = dataset.get(keyword)
        if value not in (None, ""):
            identity[keyword] = str(value)
    return identity


def reidentified(stored: pydicom.Dataset, identity: dict[str, str]) -> pydicom.Dataset:
    """``stored`` (the de-identified file, read for this delivery only) with its original
    identity back; the de-identification record goes, since the result is no longer
    de-identified and must not say it is."""
    for keyword in DEIDENTIFICATION:
        if keyword in stored:
            del stored[keyword]
    for keyword, value in identity.items():
        setattr(stored, keyword, value)
    if "SOPInstanceUID" in identity and "file_meta" in stored.__dict__ and stored.file_meta:
        stored.file_meta.MediaStorageSOPInstanceUID = identity["SOPInstanceUID"]
    return stored
