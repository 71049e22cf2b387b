"""The DICOM listener as a real process, against real PostgreSQL and Redis, with pynetdicom as
the sending node: who may associate, what is stored, what is refused and why, and that it keeps
serving. (Orthanc and dcmtk's storescu as senders: test_orthanc_roundtrip.py.)"""

from __future__ import annotations

import copy
import io

import pydicom
import pytest
from django.core.management import CommandError, call_command
from pydicom.uid import generate_uid

from tests.support.data import subset_image
from tests.support.dicom import chest_dicom
from tests.support.listener import echo, store
from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import Case, CaseImage, JobStatus
from webapp.cases.storage import private_storage
from webapp.pacs.models import DicomNode, InboundImage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SENDER = "MODALITY1"




@pytest.fixture
def node(owner):
    call_command("add_dicom_node", "--ae-title", SENDER, "--host", "127.0.0.1", "--port", "4242",
                 "--owner", owner.username)
    return DicomNode.objects.get(ae_title=SENDER)


def shared_dataset(index=0) -> pydicom.Dataset:
    return pydicom.dcmread(subset_image("dcm", index))


def dataset_of(data: bytes) -> pydicom.Dataset:
    return pydicom.dcmread(io.BytesIO(data))


def status_of(response) -> int:
    return int(response.Status)


def test_add_dicom_node_registers_and_refuses_what_it_cannot_map(owner):
    call_command("add_dicom_node", "--ae-title", "ORTHANC", "--host", "127.0.0.1", "--port", "4242",
                 "--owner", owner.username)
    node = DicomNode.objects.get()
    assert (node.ae_title, node.host, node.port, node.owner, node.sends, node.receives) == \
        ("ORTHANC", "127.0.0.1", 4242, owner, True, True)
    with pytest.raises(CommandError, match="No user named"):
        call_command("add_dicom_node", "--ae-title", "X", "--host", "h", "--port", "1",
                     "--owner", "nobody")
    with pytest.raises(CommandError, match="Not a valid AE title"):
        call_command("add_dicom_node", "--ae-title", "A\\B", "--host", "h", "--port", "1",
                     "--owner", owner.username)
    with pytest.raises(CommandError, match="Not one of your teams"):
        call_command("add_dicom_node", "--ae-title", "X", "--host", "h", "--port", "1",
                     "--owner", owner.username, "--team", "radiology")


def test_unknown_or_misplaced_nodes_are_rejected_at_association_and_audited(dicom_listener, node, owner):
    assert echo(dicom_listener.port, SENDER) == 0x0000
    assert echo(dicom_listener.port, "STRANGER") is None  # not registered
    DicomNode.objects.create(ae_title="ELSEWHERE", host="192.0.2.10", port=104, owner=owner)
    assert echo(dicom_listener.port, "ELSEWHERE") is None  # registered, but not from this address
    DicomNode.objects.filter(pk=node.pk).update(enabled=False)
    assert echo(dicom_listener.port, SENDER) is None  # switched off by an administrator
    refused = AuditEvent.objects.filter(action=Action.DICOM_REFUSED).order_by("at")
    assert [e.detail["calling_ae_title"] for e in refused] == ["STRANGER", "ELSEWHERE", SENDER]
    assert all(e.client_address == "127.0.0.1" and e.user is None for e in refused)
    assert store(dicom_listener.port, [shared_dataset()], "STRANGER") is None
    assert not CaseImage.objects.exists()


def test_instances_of_one_study_become_one_case_owned_by_the_node(dicom_listener, node, owner):
    first = shared_dataset(0)
    second = copy.deepcopy(first)  # a second image of the same study (another instance)
    second.SOPInstanceUID = second.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    second.SeriesInstanceUID, second.InstanceNumber = generate_uid(), 2
    other_study = shared_dataset(1)
    responses = store(dicom_listener.port, [first, second, other_study], SENDER)
    assert [status_of(r) for r in responses] == [0, 0, 0]

    by_study = {c.images.first().inbound.study_instance_uid: c for c in Case.objects.all()}
    assert set(by_study) == {first.StudyInstanceUID, other_study.StudyInstanceUID}
    case = by_study[first.StudyInstanceUID]
    assert case.owner == owner and case.images.count() == 2
    assert [i.position for i in case.images.order_by("position")] == [0, 1]
    # Each image has its job, queued on commit (a session's worker may already have taken it).
    assert all(i.job.status != JobStatus.FAILED for i in case.images.select_related("job"))
    inbound = InboundImage.objects.get(image__case=case, image__position=0)
    assert inbound.node == node
    # The identity is kept for the way back to the PACS; the stored file has lost it.
    assert inbound.identity["PatientID"] == first.PatientID
    assert inbound.identity["SOPInstanceUID"] == first.SOPInstanceUID
    stored = dataset_of(private_storage.open(inbound.image.original.name).read())
    assert stored.PatientID != first.PatientID and stored.StudyInstanceUID != first.StudyInstanceUID
    upload = AuditEvent.objects.filter(action=Action.UPLOAD, object_id=str(case.pk)).first()
    assert upload.user == owner and upload.detail["via"] == "dicom"

    # The same study sent again in a later association, within the window, joins the case.
    third = copy.deepcopy(first)
    third.SOPInstanceUID = third.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    assert [status_of(r) for r in store(dicom_listener.port, [third], SENDER)] == [0]
    assert case.images.count() == 3 and Case.objects.count() == 2

    # An instance sent again (an operator's resend; Orthanc routes a duplicate again) is
    # acknowledged and kept once.
    assert [status_of(r) for r in store(dicom_listener.port, [first, other_study], SENDER)] == [0, 0]
    assert CaseImage.objects.count() == 4 and "already had an instance" in dicom_listener.log_text()


def test_refused_instances_get_failure_statuses_with_reasons_and_nothing_is_kept(dicom_listener, node):
    good = shared_dataset(0)
    ct = dataset_of(chest_dicom(Modality="CT").read())
    lateral = dataset_of(chest_dicom("LL").read())
    # A real film whose JPEG stream was cut off in transit: it would still decode, partly grey.
    truncated = shared_dataset(1)
    truncated.PixelData = truncated.PixelData[: len(truncated.PixelData) // 3]
    responses = store(dicom_listener.port, [ct, lateral, truncated, good], SENDER)
    statuses = [status_of(r) for r in responses]
    assert statuses[:3] == [0xC001, 0xC001, 0xC000] and statuses[3] == 0
    comments = [str(r.ErrorComment) for r in responses[:3]]
    assert "CT" in comments[0] and "chest radiographs" in comments[0]
    assert "lateral" in comments[1]
    assert "truncated" in comments[2]
    # Only the good instance is stored: no case, image or file for the refused ones.
    assert CaseImage.objects.count() == 1
    refused = AuditEvent.objects.filter(action=Action.DICOM_REFUSED)
    assert sorted(e.detail["status"] for e in refused) == ["0xC000", "0xC001", "0xC001"]
    assert "lateral" in dicom_listener.log_text()
    # The listener keeps serving.
    assert dicom_listener.alive() and echo(dicom_listener.port, SENDER) == 0
    assert [status_of(r) for r in store(dicom_listener.port, [shared_dataset(2)], SENDER)] == [0]
