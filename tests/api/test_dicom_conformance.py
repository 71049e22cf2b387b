"""Every DICOM object the product writes passes dicom3tools' IOD validator ``dciodvfy``: no
``Error`` line, and no warning but those accepted below (each with its reason). Objects are
written through the real pipeline (StubPredictor) and served by the API, for real shared DICOMs
(a PA and an AP film) and synthetic ones, then read back with pydicom and highdicom: the SEG's
mask is the result's mask PNG, every object is in the stored source's study, the attributes a
viewer needs to place the images are the source's, the SR references the source and the SEG, and
nothing de-identification removed comes back. The SR's content tree is also read by DCMTK's
``dsrdump`` where it is installed: dciodvfy checks the SR's attributes, not the relationships
between its content items, which dsrdump refuses when the SR IOD does not allow them.

``scripts/test`` installs dicom3tools (Debian) as it installs chromium; without ``dciodvfy`` on
PATH only the validator step is skipped, with the reason."""

from __future__ import annotations

import io
import re
import shutil
import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.support.data import subset_images
from tests.support.dicom import chest_dicom
from tests.support.factories import CaseFactory
from tests.support.stubs import StubPredictor, Upload
from webapp.cases.services import results

pytestmark = pytest.mark.django_db

KINDS = ("dicom-seg", "dicom-sc", "dicom-sr")

# dciodvfy's warnings that are right to leave, with the reason (the code that writes the
# attribute says the same: webapp/cases/services/results.py, dicom_attributes.py).
ACCEPTED_WARNINGS = {
    # De-identification (PS3.15 E.1, action Z) emptied Patient ID, Study Date, Study Time and
    # Study ID in the stored file; a result (the SR too) keeps its source's identity as stored.
    # The only warnings the SR gives: it carries none of the image attributes below.
    r"Missing attribute or value that would be needed to build DICOMDIR - "
    r"(Patient ID|Study Date|Study Time|Study ID)$": "emptied by de-identification",
    # View Position is in neither IOD; kept (Standard Extended SOP Class, PS3.4) so that a
    # hanging protocol puts the result next to its PA/AP film.
    r"Attribute is not present in standard DICOM IOD - \(0x0018,0x5101\) CS View Position":
        "view position for the viewer",
    # Imager Pixel Spacing (a source with no Pixel Spacing) is not in the SC IOD; kept as such
    # rather than relabelled as Pixel Spacing (a calibration in the patient it does not have).
    r"Attribute is not present in standard DICOM IOD - \(0x0018,0x1164\) DS Imager Pixel Spacing":
        "detector spacing, under its own name",
    r"Dicom dataset contains attributes not present in standard DICOM IOD - this is a Standard "
    r"Extended SOP Class": "follows from the two above",
}

# In the synthetic source and removed or emptied by de-identification: never in a result.
IDENTIFYING = {"PatientName": "Doe^Jane", "PatientBirthDate": "19500102", "PatientSex": "F",
               "PatientAge": "074Y", "InstitutionName": "St Elsewhere Hospital",
               "OtherPatientIDs": "MRN-998877", "AccessionNumber": "ACC-445566"}


def _body(response):
    return b"".join(response.streaming_content)


def _shared_film(view: str) -> Upload:
    """The first shared DICOM whose ViewPosition is ``view``."""
    for path in subset_images("dcm"):
        if pydicom.dcmread(path, stop_before_pixels=True).get("ViewPosition") == view:
            return Upload(path.name, path.read_bytes())
    pytest.fail(f"no {view} film among the shared DICOMs")


def _synthetic(name: str, **elements) -> Upload:
    upload = chest_dicom("PA", name=name, **elements)
    return Upload(upload.name, upload.read())


def _written(token_client, owner, upload: Upload):
    """The stored source, the result mask and the served SEG and SC bytes of a finished case."""
    case = CaseFactory(owner=owner, uploads=[upload], predictor=StubPredictor())
    client = token_client(owner)
    image = client.get(f"/api/v1/cases/{case.pk}/").json()["images"][0]
    source = pydicom.dcmread(io.BytesIO(_body(client.get(image["original_url"]))))
    mask = np.asarray(Image.open(io.BytesIO(_body(client.get(image["mask_url"]))))) > 0
    written = {}
    for kind in KINDS:
        response = client.get(image["url"] + f"{kind}/")
        assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
        written[kind] = _body(response)
    return source, mask, written


def _validate(data: bytes, tmp_path, label: str) -> None:
    """dciodvfy on ``data``: no Error line, every Warning line accepted above; an SR's content
    tree read by dsrdump (where installed) without an error."""
    path = tmp_path / f"{label}.dcm"
    path.write_bytes(data)
    if label.endswith("dicom-sr") and shutil.which("dsrdump") is not None:
        run = subprocess.run(["dsrdump", str(path)], capture_output=True, encoding="utf-8",
                             errors="replace", timeout=120)  # it cuts texts inside a character
        output = run.stdout + run.stderr
        assert run.returncode == 0 and not re.search(r"^[EF]: ", output, re.M), \
            f"{label}: dsrdump:\n{output}"
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not on PATH; scripts/test installs it")
    run = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=120)
    lines = (run.stdout + run.stderr).splitlines()
    errors = [line for line in lines if line.startswith("Error")]
    assert not errors, f"{label}: dciodvfy errors:\n" + "\n".join(lines)
    unexpected = [line for line in lines if line.startswith("Warning") and not any(
        re.search(pattern, line) for pattern in ACCEPTED_WARNINGS)]
    assert not unexpected, f"{label}: dciodvfy warnings not accepted:\n" + "\n".join(unexpected)


def _check_read_back(source, mask, written) -> dict[str, pydicom.Dataset]:
    """The SEG's mask is the result's; both are in the source's study and frame of reference."""
    seg = hd.seg.segread(io.BytesIO(written["dicom-seg"]))
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=[source.SOPInstanceUID],
                                               segment_numbers=[1])
    assert pixels.shape == (1, *mask.shape, 1)
    assert np.array_equal(pixels[0, :, :, 0] > 0, mask)
    sc = hd.imread(io.BytesIO(written["dicom-sc"]))
    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert sc.pixel_array.shape == (*mask.shape, 3)
    for result in (seg, sc):
        assert result.StudyInstanceUID == source.StudyInstanceUID
        assert result.SeriesInstanceUID != source.SeriesInstanceUID
        # The source's frame of reference, or none where the source has none.
        assert result.get("FrameOfReferenceUID") in (None, source.get("FrameOfReferenceUID"))
        for keyword in ("PatientID", "PatientName", "StudyDate", "StudyTime", "StudyID",
                        "AccessionNumber", "PatientIdentityRemoved"):
            assert str(result.get(keyword, "")) == str(source.get(keyword, "")), keyword
        assert result.get("ViewPosition") == source.get("ViewPosition")
        assert result.BodyPartExamined == source.get("BodyPartExamined", "CHEST")
        # Laterality is for paired body parts only; the chest's side is Image Laterality.
        assert "Laterality" not in result
    assert seg.get("FrameOfReferenceUID") == source.get("FrameOfReferenceUID")
    _check_structured_report(source, seg, written["dicom-sr"])
    return {"dicom-seg": seg, "dicom-sc": sc}


def _check_structured_report(source, seg, data: bytes) -> None:
    """The SR is in the source's study (a series of its own), with the source's patient and
    study as stored, and it references the source (content and evidence) and the SEG."""
    sr = hd.sr.srread(io.BytesIO(data))
    assert sr.SOPClassUID == pydicom.uid.ComprehensiveSRStorage
    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.SeriesInstanceUID not in (source.SeriesInstanceUID, seg.SeriesInstanceUID)
    assert sr.SeriesNumber == 903
    for keyword in ("PatientID", "PatientName", "PatientSex", "StudyDate", "StudyTime", "StudyID",
                    "AccessionNumber", "PatientIdentityRemoved"):
        assert str(sr.get(keyword, "")) == str(source.get(keyword, "")), keyword
    evidence = {uid for _, _, uid, _ in sr.get_evidence()}
    assert evidence == {source.SOPInstanceUID, seg.SOPInstanceUID}
    report = hd.sr.MeasurementReport.from_sequence(sr.content)
    assert report.get_image_measurement_groups(referenced_sop_instance_uid=source.SOPInstanceUID)


@pytest.mark.parametrize("view", ["PA", "AP"])
def test_results_of_shared_films_conform(owner, token_client, tmp_path, view):
    original = _shared_film(view)
    source, mask, written = _written(token_client, owner, original)
    assert mask.any()
    for kind, data in written.items():
        _validate(data, tmp_path, f"{view}-{kind}")
    objects = _check_read_back(source, mask, written)
    spacing = [float(v) for v in source.PixelSpacing]
    measures = objects["dicom-seg"].SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == pytest.approx(spacing)
    assert [float(v) for v in objects["dicom-sc"].PixelSpacing] == pytest.approx(spacing)
    # The shared films' header has patient sex and age; the stored file has neither, and
    # neither comes back (nor the original study's UID).
    before = pydicom.dcmread(io.BytesIO(original.read()), stop_before_pixels=True)
    assert before.PatientSex and before.PatientAge
    for result in objects.values():
        assert result.PatientSex == "" and "PatientAge" not in result
        assert result.StudyInstanceUID != before.StudyInstanceUID


def test_a_negative_result_conforms(owner, token_client, tmp_path):
    upload = _shared_film("AP")
    case = CaseFactory(owner=owner, uploads=[upload], predictor=StubPredictor(0.1, positive=False))
    client = token_client(owner)
    image = client.get(f"/api/v1/cases/{case.pk}/").json()["images"][0]
    for kind in KINDS:
        _validate(_body(client.get(image["url"] + f"{kind}/")), tmp_path, f"negative-{kind}")


@pytest.mark.parametrize("elements, laterality", [
    ({"ImageLaterality": "U", "PatientOrientation": ["R", "F"]}, "U"),
    ({"Laterality": "R", "PatientOrientation": ["P", "F"]}, "R"),
])
def test_placement_attributes_are_carried_over(owner, token_client, tmp_path, elements, laterality):
    upload = _synthetic("oriented.dcm", ImagerPixelSpacing=[0.2, 0.2], **elements)
    source, mask, written = _written(token_client, owner, upload)
    for kind, data in written.items():
        _validate(data, tmp_path, f"oriented-{kind}")
    objects = _check_read_back(source, mask, written)
    for result in objects.values():
        assert list(result.PatientOrientation) == elements["PatientOrientation"]
        assert result.ImageLaterality == laterality
        assert result.ViewPosition == "PA"
    measures = objects["dicom-seg"].SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0]
    assert [float(v) for v in measures.PixelSpacing] == [0.2, 0.2]
    sc = objects["dicom-sc"]
    assert [float(v) for v in sc.ImagerPixelSpacing] == [0.2, 0.2] and "PixelSpacing" not in sc


def test_unknown_orientation_stays_unknown(owner, token_client, tmp_path):
    """No Patient Orientation in the source: empty (Type 2, unknown) in both, not assumed."""
    source, mask, written = _written(token_client, owner, _synthetic("plain.dcm"))
    for kind, data in written.items():
        _validate(data, tmp_path, f"plain-{kind}")
    for result in _check_read_back(source, mask, written).values():
        assert "PatientOrientation" in result and not result.PatientOrientation
        assert "ImageLaterality" not in result


def test_what_deidentification_removed_does_not_come_back(owner, token_client, tmp_path):
    upload = _synthetic("identified.dcm", **IDENTIFYING)
    source, mask, written = _written(token_client, owner, upload)
    assert source.PatientIdentityRemoved == "YES"
    for kind, data in written.items():
        _validate(data, tmp_path, f"identified-{kind}")
        for keyword, value in IDENTIFYING.items():  # anywhere in the file (sex "F": too short)
            assert len(value) < 4 or value.encode() not in data, (kind, keyword)
    for result in _check_read_back(source, mask, written).values():
        assert result.PatientIdentityRemoved == "YES"
        assert result.DeidentificationMethodCodeSequence[0].CodeValue == "113100"
        for keyword in IDENTIFYING:
            assert not result.get(keyword), keyword


def test_png_inputs_get_no_dicom_result(owner, token_client):
    """A PNG input has no patient or study to put a DICOM object in: none is written, the API
    answers 404 (and so there is nothing to validate)."""
    case = CaseFactory(owner=owner, extension="png", predictor=StubPredictor())
    client = token_client(owner)
    image = client.get(f"/api/v1/cases/{case.pk}/").json()["images"][0]
    assert image["mask_url"] and image["dicom_seg_url"] is None and image["dicom_sc_url"] is None
    assert image["dicom_sr_url"] is None
    for kind in KINDS:
        assert client.get(image["url"] + f"{kind}/").status_code == 404
    with pytest.raises(results.NotAvailable):
        results.result_file(case.images.get(), "seg")
