"""DICOM de-identification on ingest (PS3.15 basic profile): the stored file loses the
patient's identity, the case record keeps what the clinician needs, the worker can still read
the file; a setting turns it off."""

import io

import pydicom
import pytest
from pydicom.tag import Tag

from ml.core.reading import read_xray
from tests.support.data import subset_image
from tests.support.stubs import Upload
from webapp.cases.services.uploads import create_case
from webapp.cases.storage import private_storage

pytestmark = pytest.mark.django_db

IDENTITY = {
    "PatientName": "PHI^JANE^Q", "PatientID": "MRN-4471", "PatientBirthDate": "19600101",
    "OtherPatientIDs": "ALT-99", "PatientAddress": "1 Hospital Road", "InstitutionName": "St PHI",
    "ReferringPhysicianName": "DR^WHO", "AccessionNumber": "ACC-123", "OperatorsName": "OPS^X",
    "StudyDescription": "Chest PA for Jane", "DeviceSerialNumber": "SN-1",
}


def identified_dicom() -> tuple[bytes, pydicom.Dataset]:
    dataset = pydicom.dcmread(subset_image("dcm"))
    for keyword, value in IDENTITY.items():
        setattr(dataset, keyword, value)
    dataset.PatientSex, dataset.PatientAge = "F", "061Y"
    dataset.add_new(Tag(0x0009, 0x0010), "LO", "ACME PRIVATE")
    dataset.add_new(Tag(0x0009, 0x1001), "LO", "PHI in a private tag")
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue(), dataset


def test_stored_dicom_is_deidentified_and_case_record_keeps_clinical_fields(owner):
    data, original = identified_dicom()
    case = create_case(owner, [Upload("scan.dcm", data)], "10.0.0.1")
    image = case.images.get()
    stored_bytes = private_storage.open(image.original.name).read()
    stored = pydicom.dcmread(io.BytesIO(stored_bytes))

    for keyword in IDENTITY:
        assert not stored.get(keyword), keyword  # removed or emptied
    assert not [e for e in stored if e.tag.is_private]
    for value in IDENTITY.values():
        assert value.encode() not in stored_bytes
    assert stored.PatientIdentityRemoved == "YES"
    assert stored.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
    assert stored.StudyInstanceUID != original.StudyInstanceUID  # replaced (U)
    assert stored.file_meta.MediaStorageSOPInstanceUID == stored.SOPInstanceUID
    # What the model and the area need is intact.
    assert stored.Modality == "CR" and list(stored.PixelSpacing) == list(original.PixelSpacing)
    xray = read_xray(stored_bytes)
    assert (xray.width, xray.height) == (image.width, image.height)

    # The access-controlled case record keeps what the clinician needs to see.
    assert image.metadata["Modality"] == "CR" and image.metadata["PatientSex"] == "F"
    assert image.metadata["PatientAge"] == "061Y"
    assert image.metadata["StudyInstanceUID"] == original.StudyInstanceUID
    assert case.study_metadata["StudyInstanceUID"] == original.StudyInstanceUID
    assert "PatientName" not in image.metadata and "PatientID" not in image.metadata
    assert image.sha256 and image.size_bytes == len(stored_bytes)


def test_same_study_keeps_one_replacement_uid(owner, other):
    data, _ = identified_dicom()
    first = create_case(owner, [Upload("a.dcm", data)], None).images.get()
    second = create_case(other, [Upload("b.dcm", data)], None).images.get()
    uid = lambda image: pydicom.dcmread(private_storage.open(image.original.name)).StudyInstanceUID  # noqa: E731
    assert uid(first) == uid(second)


def test_deidentification_can_be_turned_off(owner, settings):
    settings.DICOM_DEIDENTIFY_ON_STORE = False
    data, _ = identified_dicom()
    image = create_case(owner, [Upload("scan.dcm", data)], None).images.get()
    assert private_storage.open(image.original.name).read() == data


def test_the_standards_whole_table_applies_and_inside_kept_sequences_too():
    """Attributes of PS3.15 Table E.1-1 that the hand-typed list missed, and identifying
    attributes inside a sequence the profile keeps, are gone; a UID inside it is replaced by the
    same keyed UID as everywhere else (no database needed: the function alone)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from webapp.cases.services.deidentify import deidentify_dicom, new_uid

    dataset = pydicom.dcmread(subset_image("dcm"))
    missed_before = {"DetectorID": "DET-0042", "ConsultingPhysicianName": "DR^HOUSE",
                     "StationAETitle": "XRWARD7", "InstanceCreationDate": "20240316",
                     "ReasonForVisit": "fall at home, Jane"}
    for keyword, value in missed_before.items():
        setattr(dataset, keyword, value)
    view = Dataset()
    view.CodeValue, view.CodingSchemeDesignator, view.CodeMeaning = "R-10214", "SRT", "PA"
    view.PatientID = "MRN-NESTED-9"  # a vendor's stray copy, inside a kept sequence
    view.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    dataset.ViewCodeSequence = Sequence([view])
    out = io.BytesIO()
    dataset.save_as(out)

    stored_bytes = deidentify_dicom(out.getvalue())
    stored = pydicom.dcmread(io.BytesIO(stored_bytes))
    for keyword, value in {**missed_before, "PatientID": "MRN-NESTED-9"}.items():
        assert value.encode() not in stored_bytes, keyword
    nested = stored.ViewCodeSequence[0]
    assert nested.CodeMeaning == "PA" and not nested.get("PatientID")
    assert nested.ReferencedSOPInstanceUID == stored.SOPInstanceUID == new_uid(dataset.SOPInstanceUID)
    assert read_xray(stored_bytes).pixels.shape == (stored.Rows, stored.Columns)
