"""The DICOM Structured Report of a result, read back with highdicom: in the source's study, with
the job's finding (present/absent), probability, figures and words, and the UIDs it is given.
(Its conformance, dciodvfy and dsrdump, is in test_dicom_conformance.py.)"""

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
from highdicom.sr import ValueTypeValues
from highdicom.sr.utils import find_content_items
from PIL import Image
from pydicom.sr.codedict import codes

from tests.support.data import subset_image
from tests.support.factories import CaseFactory
from tests.support.stubs import StubPredictor, Upload
from webapp.cases.models import Job
from webapp.cases.services import (dicom_attributes, display, files, results, status,
                                   structured_report)
from webapp.cases.services.results import ALGORITHM_NAME

pytestmark = pytest.mark.django_db

LATERALITY = structured_report.ROW_NAMES["Side"]


def _body(response):
    return b"".join(response.streaming_content)


def _served(client, image_payload):
    response = client.get(image_payload["dicom_sr_url"])
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    return hd.sr.srread(io.BytesIO(_body(response)))


def _group(sr):
    report = hd.sr.MeasurementReport.from_sequence(sr.content)
    groups = report.get_image_measurement_groups(finding_type=codes.SCT.Pneumothorax)
    assert len(groups) == 1
    return groups[0]


def _texts(sr, name) -> list[str]:
    items = find_content_items(sr, name=name, value_type=ValueTypeValues.TEXT, recursive=True)
    return [item.value for item in items]


def _finding(group):
    [evaluation] = group.get_qualitative_evaluations(name=codes.SCT.Pneumothorax)
    return evaluation.value


def _measured(group, name):
    return [(float(m.value), m.unit.value) for m in group.get_measurements(name=name)]


def test_sr_holds_the_positive_result(owner, token_client, api_done_case):
    client = token_client(owner)
    image = client.get(api_done_case["url"]).json()["images"][0]
    sr = _served(client, image)
    source = pydicom.dcmread(io.BytesIO(_body(client.get(image["original_url"]))))
    job = Job.objects.get(image_id=image["id"])
    assert job.positive and job.findings["side"]

    assert sr.StudyInstanceUID == source.StudyInstanceUID
    assert sr.SeriesInstanceUID != source.SeriesInstanceUID and sr.SeriesNumber == 903
    group = _group(sr)
    assert _finding(group) == codes.SCT.Present
    assert _measured(group, codes.DCM.Probability) == [(pytest.approx(job.probability), "1")]
    assert _measured(group, codes.SCT.Area) == [(pytest.approx(job.area_cm2), "cm2")]
    depth = job.findings["rim_depth_mm"]
    assert _measured(group, codes.SCT.Depth) == [(pytest.approx(depth), "mm")]
    assert [s.referenced_sop_instance_uid for s in group.source_images] == [source.SOPInstanceUID]
    assert _texts(group[0], codes.DCM.AlgorithmName) == [ALGORITHM_NAME]
    assert _texts(group[0], codes.DCM.AlgorithmVersion) == [job.model_version]

    # The words are the case page's, from the job: side (as the job holds it), zones, size.
    summary = display.describe_results([status.job_summary(job)])[0]
    assert _texts(sr, codes.DCM.Summary) == [summary["result_text"]]
    [side] = _texts(sr, LATERALITY)
    assert side.startswith(display.SIDE_WORDS[job.findings["side"]] + ";")
    [where] = _texts(sr, structured_report.ROW_NAMES["Where"])
    assert all(zone in where for zone in job.findings["zones"])
    assert _texts(sr, codes.DCM.Recommendation) == [structured_report.REVIEW_FIRST]
    [comment] = _texts(sr, codes.DCM.Comment)
    assert "not a diagnosis" in comment and job.model_version in comment

    # Served again: the same object, which references the SEG the API serves.
    again = _served(client, image)
    assert again.SOPInstanceUID == sr.SOPInstanceUID
    seg = pydicom.dcmread(io.BytesIO(_body(client.get(image["dicom_seg_url"]))))
    assert seg.SOPInstanceUID in {uid for _, _, uid, _ in sr.get_evidence()}


def test_sr_holds_the_negative_result(owner, token_client):
    path = subset_image("dcm")
    case = CaseFactory(owner=owner, uploads=[Upload(path.name, path.read_bytes())],
                       predictor=StubPredictor(0.1, positive=False))
    client = token_client(owner)
    image = client.get(f"/api/v1/cases/{case.pk}/").json()["images"][0]
    sr = _served(client, image)
    job = Job.objects.get(image_id=image["id"])
    assert job.positive is False and not job.findings.get("side")

    group = _group(sr)
    assert _finding(group) == codes.SCT.Absent
    assert _measured(group, codes.DCM.Probability) == [(pytest.approx(0.1), "1")]
    assert not _measured(group, codes.SCT.Depth)
    assert not _texts(sr, LATERALITY) and not _texts(sr, codes.DCM.Recommendation)
    [summary] = _texts(sr, codes.DCM.Summary)
    assert summary.startswith("No pneumothorax detected")


def test_explicit_uids_are_used_as_they_are(owner, api_done_case):
    image = Job.objects.get(image__case_id=api_done_case["id"]).image
    original = files.read(image.original.name)
    source = dicom_attributes.with_identity_elements(pydicom.dcmread(io.BytesIO(original)))
    mask = np.asarray(Image.open(io.BytesIO(files.read(image.job.mask.name))).convert("L")) > 0
    uids = {kind: (pydicom.uid.generate_uid(), pydicom.uid.generate_uid())
            for kind in ("seg", "sc", "sr")}

    seg = results.build_segmentation(image, source, mask, series_instance_uid=uids["seg"][0],
                                     sop_instance_uid=uids["seg"][1])
    sc = results.build_secondary_capture(image, source, mask, original,
                                         series_instance_uid=uids["sc"][0],
                                         sop_instance_uid=uids["sc"][1])
    sr = structured_report.build_structured_report(
        image, source, series_instance_uid=uids["sr"][0], sop_instance_uid=uids["sr"][1],
        evidence=[seg])
    for kind, dataset in (("seg", seg), ("sc", sc), ("sr", sr)):
        assert (dataset.SeriesInstanceUID, dataset.SOPInstanceUID) == uids[kind], kind
        assert dataset.StudyInstanceUID == source.StudyInstanceUID
    # The same UIDs again: the same content (the tracking UID is derived from them).
    again = structured_report.build_structured_report(
        image, source, series_instance_uid=uids["sr"][0], sop_instance_uid=uids["sr"][1])
    assert _group(again).tracking_uid == _group(sr).tracking_uid
    # No UIDs: new ones, each time.
    first, second = (structured_report.build_structured_report(image, source) for _ in range(2))
    assert first.SOPInstanceUID != second.SOPInstanceUID
    assert first.SeriesInstanceUID != second.SeriesInstanceUID


def test_a_stranger_gets_no_sr(owner, other, token_client, api_done_case):
    image = token_client(owner).get(api_done_case["url"]).json()["images"][0]
    assert token_client(other).get(image["dicom_sr_url"]).status_code == 404
