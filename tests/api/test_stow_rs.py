"""DICOMweb STOW-RS (POST /api/v1/dicomweb/studies/, PS3.18 10.5) storing instances, on the
real database with real DICOMs of the shared SIIM-ACR subset: a study becomes one case, each
refused instance is in FailedSOPSequence with its Failure Reason (and its reason in words in the
Warning header), and the status code says how many were stored. The whole request's errors and
its authentication: test_stow_rs_requests.py."""

import io

import numpy as np
import pydicom
import pytest
from pydicom.uid import CTImageStorage, generate_uid

from tests.support.data import subset_image
from tests.support.dicom import chest_dicom, dicom_bytes
from tests.support.factories import TeamFactory
from tests.support.stow import (
    BOUNDARY,
    FAILED,
    REFERENCED,
    RETRIEVE_URL,
    URL,
    ct_dicom,
    failures,
    multipart,
    referenced,
    shared_dicom,
    stow,
    uids,
    values,
)
from webapp.audit.models import AuditEvent
from webapp.cases.models import Case, CaseImage, Job

pytestmark = pytest.mark.django_db


def test_two_instances_of_one_study_make_one_case_with_two_images_and_queued_jobs(
        owner, token_client):
    # The owner is in two teams: the case goes to the default one (the first by name).
    TeamFactory(name="B ward", members=[owner])
    TeamFactory(name="A ward", members=[owner])
    first = shared_dicom(0)
    second = shared_dicom(1, StudyInstanceUID=uids(first)["study"])
    client = token_client(owner)
    response = stow(client, multipart(first, second))

    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/dicom+json"
    assert "Warning" not in response
    body = response.json()
    assert FAILED not in body
    case = Case.objects.get()
    case_url = f"http://testserver/api/v1/cases/{case.pk}/"
    assert values(body, RETRIEVE_URL) == [case_url]
    assert referenced(body) == [{"class": uids(d)["class"], "instance": uids(d)["instance"],
                                 "url": case_url} for d in (first, second)]
    assert body[REFERENCED]["vr"] == "SQ" and body[RETRIEVE_URL]["vr"] == "UR"
    assert case.owner == owner and case.team.name == "A ward"
    assert case.study_metadata["StudyInstanceUID"] == uids(first)["study"]
    images = list(case.images.order_by("position"))
    assert [i.original_name for i in images] == ["part 1", "part 2"]
    assert [i.source_format for i in images] == ["dicom", "dicom"]
    assert list(Job.objects.filter(image__case=case).values_list("status", flat=True)) == ["queued"] * 2
    # The case is the owner's like any other: the REST API shows it.
    detail = client.get(case_url)
    assert detail.status_code == 200 and len(detail.json()["images"]) == 2
    # One upload row naming the STOW-RS call; nothing refused.
    upload = AuditEvent.objects.get(action="upload", object_id=str(case.pk))
    assert upload.username == "owner" and upload.client_address == "10.4.5.6"
    assert upload.detail["api"] == "POST /api/v1/dicomweb/studies/"
    assert "STOW-RS" in upload.detail["interface"] and upload.detail["parts"] == [1, 2]
    assert len(upload.detail["images"]) == 2 and upload.detail["team"] == "A ward"
    assert not AuditEvent.objects.filter(action="dicom_refused").exists()


def test_two_studies_make_two_cases(owner, token_client):
    first, second = shared_dicom(0), shared_dicom(1)
    third = shared_dicom(2, StudyInstanceUID=uids(first)["study"])
    response = stow(token_client(owner), multipart(first, second, third))

    assert response.status_code == 200, response.content
    body = response.json()
    assert Case.objects.count() == 2
    by_study = {c.study_metadata["StudyInstanceUID"]: c for c in Case.objects.all()}
    one, two = by_study[uids(first)["study"]], by_study[uids(second)["study"]]
    assert one.images.count() == 2 and two.images.count() == 1
    assert [r["url"] for r in referenced(body)] == [
        f"http://testserver/api/v1/cases/{c.pk}/" for c in (one, two, one)]
    # No single study URL: RetrieveURL is there, empty (type 2).
    assert body[RETRIEVE_URL] == {"vr": "UR"}
    assert AuditEvent.objects.filter(action="upload").count() == 2


def test_refused_instances_fail_alone_with_their_reasons(owner, token_client):
    good = shared_dicom(0)
    lateral = shared_dicom(1, ViewPosition="LL")
    ct = ct_dicom()
    truncated = shared_dicom(2)[:3000]
    response = stow(token_client(owner), multipart(good, lateral, ct, truncated,
                                                   ("text/plain", b"not an instance")))

    assert response.status_code == 202, response.content
    body = response.json()
    assert [r["instance"] for r in referenced(body)] == [uids(good)["instance"]]
    case = Case.objects.get()
    assert values(body, RETRIEVE_URL) == [f"http://testserver/api/v1/cases/{case.pk}/"]
    assert case.images.count() == 1
    failed = failures(body)
    assert [f["reason"] for f in failed] == [0xA900, 0x0122, 0xC000, 0xC000]
    assert failed[0]["instance"] == uids(lateral)["instance"] and failed[0]["class"] == uids(lateral)["class"]
    assert failed[1]["instance"] == uids(ct)["instance"] and failed[1]["class"] == CTImageStorage
    # Each refused part's reason, for a person, in the Warning header (299, RFC 7234 syntax).
    warning = response["Warning"]
    assert warning.startswith('299 testserver "part 2: This is a lateral view')
    assert 'part 3: This DICOM is a CT study' in warning
    assert 'part 4: The DICOM file' in warning and 'part 5: the part is text/plain' in warning
    assert warning.count("299 testserver") == 4 and "\n" not in warning
    # The refusals have their audit row, with the codes and the reasons.
    refused = AuditEvent.objects.get(action="dicom_refused")
    assert refused.username == "owner" and refused.detail["stored"] == 1
    assert [r["failure_reason"] for r in refused.detail["refused"]] == [
        "0xA900", "0x0122", "0xC000", "0xC000"]
    assert [r["part"] for r in refused.detail["refused"]] == [2, 3, 4, 5]


def test_nothing_stored_answers_409(owner, token_client):
    png = subset_image("png").read_bytes()  # a fine X-ray, but no DICOM
    response = stow(token_client(owner), multipart(chest_dicom("LATERAL").read(), png))

    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/dicom+json"
    body = response.json()
    assert REFERENCED not in body and body[RETRIEVE_URL] == {"vr": "UR"}
    assert [f["reason"] for f in failures(body)] == [0xA900, 0xC000]
    assert "part 2: not a DICOM file" in response["Warning"]
    assert not Case.objects.exists() and not CaseImage.objects.exists()
    assert AuditEvent.objects.filter(action="dicom_refused", username="owner").count() == 1


def test_an_instance_of_another_study_than_the_urls_fails(owner, token_client):
    mine, other_study = shared_dicom(0), shared_dicom(1)
    study = uids(mine)["study"]
    client = token_client(owner)
    response = stow(client, multipart(mine, other_study), url=f"{URL}{study}/")

    assert response.status_code == 202, response.content
    body = response.json()
    assert [r["instance"] for r in referenced(body)] == [uids(mine)["instance"]]
    assert failures(body) == [{"class": uids(other_study)["class"],
                               "instance": uids(other_study)["instance"], "reason": 0xA900}]
    assert "part 2: the instance belongs to another study" in response["Warning"]
    assert Case.objects.get().study_metadata["StudyInstanceUID"] == study
    # Only instances of another study: none stored.
    again = stow(client, multipart(other_study), url=f"{URL}{study}/")
    assert again.status_code == 409 and failures(again.json())[0]["reason"] == 0xA900
    # A target that is no UID is a bad request.
    bad = stow(client, multipart(mine), url=f"{URL}not-a-uid/")
    assert bad.status_code == 400 and "UID" in bad.json()["detail"]


def test_the_url_without_trailing_slash_works_too(owner, token_client):
    """DICOMweb clients append "/studies" to their base URL and cannot follow a POST redirect."""
    data = shared_dicom(0)
    client = token_client(owner)
    assert stow(client, multipart(data), url=URL.rstrip("/")).status_code == 200
    study = uids(data)["study"]
    assert stow(client, multipart(shared_dicom(1, StudyInstanceUID=study)),
                url=f"{URL}{study}").status_code == 200
    assert Case.objects.count() == 2


def test_the_answer_is_dicom_json_or_json_as_accepted(owner, token_client):
    client = token_client(owner)
    response = stow(client, multipart(shared_dicom(0)), HTTP_ACCEPT="application/dicom+json")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom+json"
    # The body is DICOM JSON that a DICOM toolkit reads back.
    dataset = pydicom.Dataset.from_json(response.json())
    assert dataset.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == uids(shared_dicom(0))["instance"]
    plain = stow(client, multipart(shared_dicom(1)), HTTP_ACCEPT="application/json")
    assert plain.status_code == 200 and plain["Content-Type"] == "application/json"
    assert plain.json()[REFERENCED]["vr"] == "SQ"
    # XML is not offered: 406, before the body is read (nothing stored).
    xml = stow(client, multipart(shared_dicom(2)), HTTP_ACCEPT="application/dicom+xml")
    assert xml.status_code == 406 and xml["Content-Type"] == "application/json"
    assert Case.objects.count() == 2


def test_another_user_cannot_see_the_case(owner, other, token_client):
    response = stow(token_client(owner), multipart(shared_dicom(0)))
    case_url = referenced(response.json())[0]["url"]
    assert token_client(other).get(case_url).status_code == 404
    assert token_client(owner).get(case_url).status_code == 200


def test_parts_may_omit_their_content_type_and_use_base64(owner, token_client):
    """A part without Content-Type is of the declared type (RFC 2387); a Content-Transfer-Encoding
    is undone."""
    import base64

    first, second = shared_dicom(0), shared_dicom(1)
    body = (f"--{BOUNDARY}\r\n\r\n".encode() + first + b"\r\n"
            + f"--{BOUNDARY}\r\nContent-Type: application/dicom; transfer-syntax=1.2.840.10008.1.2.1"
              f"\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode()
            + base64.encodebytes(second) + f"\r\n--{BOUNDARY}--".encode())
    response = stow(token_client(owner), body)
    assert response.status_code == 200, response.content
    assert [r["instance"] for r in referenced(response.json())] == [
        uids(first)["instance"], uids(second)["instance"]]


def test_an_instance_without_study_uid_fails(owner, token_client):
    rows = np.linspace(0, 255, 256, dtype=np.float64)
    data = dicom_bytes(np.add.outer(rows, rows[::-1]).astype(np.uint8), BodyPartExamined="CHEST",
                       SOPInstanceUID=generate_uid())
    dataset = pydicom.dcmread(io.BytesIO(data))
    del dataset.StudyInstanceUID
    out = io.BytesIO()
    dataset.save_as(out)
    response = stow(token_client(owner), multipart(out.getvalue()))
    assert response.status_code == 409
    assert failures(response.json())[0]["reason"] == 0xA900
    assert "has no StudyInstanceUID" in response["Warning"]
