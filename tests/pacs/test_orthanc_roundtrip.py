"""The whole hospital loop against a real Orthanc (Debian's package) and the real worker: the
PACS sends a chest film to the DICOM listener, the worker analyses it, and the results (SC, SEG,
SR) come back into the same study in Orthanc; also with dcmtk's storescu as the sender, with the
PACS down while the results are ready (delivered once it is back, exactly once), and with an
administrator's retry of a delivery that gave up."""

from __future__ import annotations

import csv
import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image

from tests.support.data import SHARED_DATA
from tests.support.listener import store
from tests.support.waiting import wait_until
from webapp.cases.models import Case
from webapp.cases.storage import private_storage
from webapp.pacs.models import Delivery, DeliveryStatus, DicomNode, InboundImage
from webapp.pacs.services.delivery import deliver, give_up
from webapp.pacs.services.outbound import image_results
from webapp.pacs.services.sending import send_instances

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEG_STORAGE = "1.2.840.10008.5.1.4.1.1.66.4"
SC_STORAGE = "1.2.840.10008.5.1.4.1.1.7"
RESULT_TIMEOUT = 300  # inference on a busy 2-core machine, then the delivery




def large_pneumothorax_dicoms(count: int = 2) -> list:
    """Shared DICOMs with the largest outlined pneumothoraces: the model's call is not in doubt."""
    with open(SHARED_DATA / "labels.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["image"].endswith(".dcm")
                and r["has_pneumothorax"] == "1"]
    rows.sort(key=lambda r: -int(r["mask_pixels"]))
    return [SHARED_DATA / r["image"] for r in rows[:count]]


def register(owner, ae_title, port, **options):
    arguments = ["--ae-title", ae_title, "--host", "127.0.0.1", "--port", str(port),
                 "--owner", owner.username]
    for name, value in options.items():
        arguments += [f"--{name}", value]
    call_command("add_dicom_node", *arguments)
    return DicomNode.objects.get(ae_title=ae_title)


def wait_for_delivery(status=DeliveryStatus.DELIVERED, timeout=RESULT_TIMEOUT, **lookup):
    def reached():
        delivery = Delivery.objects.filter(**lookup).first()
        return delivery is not None and delivery.status == status
    wait_until(reached, timeout=timeout, poll=0.5, what=f"a delivery {status}")
    return Delivery.objects.get(**lookup)


def results_in_orthanc(orthanc, study_instance_uid: str) -> dict[str, list[dict]]:
    studies = orthanc.find_studies_by_uid(study_instance_uid)
    assert len(studies) == 1, "the results must be filed in the original study, not a new one"
    by_class: dict[str, list[dict]] = {}
    for instance in orthanc.instances_of_study(studies[0]):
        by_class.setdefault(instance["SOPClassUID"], []).append(instance)
    return by_class


def test_orthanc_sends_a_film_and_gets_sc_seg_and_sr_back_in_the_same_study(
        celery_worker_process, dicom_listener, orthanc_factory, owner, login):
    orthanc = orthanc_factory({"triage": ["TRIAGE", "127.0.0.1", dicom_listener.port]})
    register(owner, "ORTHANC", orthanc.dicom_port)
    path = large_pneumothorax_dicoms(1)[0]
    original = pydicom.dcmread(path)
    instance = orthanc.upload(path.read_bytes())
    orthanc.send_to_modality("triage", [instance])

    case = Case.objects.get(images__inbound__study_instance_uid=original.StudyInstanceUID)
    delivery = wait_for_delivery(case=case)
    assert delivery.attempts == 1 and [s["kind"] for s in delivery.sent] == ["sc", "seg", "sr"]

    by_class = results_in_orthanc(orthanc, original.StudyInstanceUID)
    assert {str(original.SOPClassUID), SC_STORAGE, SEG_STORAGE} <= set(by_class)
    assert sum(len(v) for v in by_class.values()) == 4  # the film and its three results
    sr_class = next(c for c in by_class if c.startswith("1.2.840.10008.5.1.4.1.1.88."))
    job = case.images.get().job

    seg = hd.seg.segread(io.BytesIO(orthanc.file_of(by_class[SEG_STORAGE][0]["ID"])))
    assert seg.PatientID == original.PatientID and seg.StudyInstanceUID == original.StudyInstanceUID
    # It references the film as the PACS holds it (the original instance, not the de-identified copy).
    referenced = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert referenced.ReferencedSOPInstanceUID == original.SOPInstanceUID
    result_mask = np.asarray(Image.open(private_storage.open(job.mask.name)).convert("L")) > 0
    seg_mask = np.asarray(seg.pixel_array).reshape(result_mask.shape) > 0
    assert np.array_equal(seg_mask, result_mask) and job.positive == bool(result_mask.any())

    sc = pydicom.dcmread(io.BytesIO(orthanc.file_of(by_class[SC_STORAGE][0]["ID"])))
    assert sc.PatientID == original.PatientID and sc.PhotometricInterpretation == "RGB"
    sr = pydicom.dcmread(io.BytesIO(orthanc.file_of(by_class[sr_class][0]["ID"])))
    assert sr.StudyInstanceUID == original.StudyInstanceUID and sr.PatientID == original.PatientID
    text = str(sr.ContentSequence)
    assert "Pneumothorax" in text and f"{job.probability:.2f}"[:3] in text

    # The case page says where the case came from and when the results reached the PACS, and
    # the identity kept for the way back is gone.
    page = login(owner).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Received over DICOM from" in page and "Results reached" in page
    assert InboundImage.objects.get(image__case=case).identity == {}


def test_storescu_is_a_second_sender_whose_results_go_to_its_pacs(
        celery_worker_process, dicom_listener, orthanc_factory, owner, dcmtk):
    orthanc = orthanc_factory()
    pacs = register(owner, "ORTHANC", orthanc.dicom_port, direction="receive")
    modality = register(owner, "STORESCU", 104, direction="send")
    DicomNode.objects.filter(pk=modality.pk).update(results_node=pacs)
    path = large_pneumothorax_dicoms(2)[1]
    original = pydicom.dcmread(path, stop_before_pixels=True)
    sent = dcmtk.storescu("127.0.0.1", dicom_listener.port, path, calling_aet="STORESCU",
                          called_aet="TRIAGE")
    assert dcmtk.store_succeeded(sent), dcmtk.output(sent)

    case = Case.objects.get(images__inbound__study_instance_uid=original.StudyInstanceUID)
    delivery = wait_for_delivery(case=case)
    assert delivery.node == pacs
    by_class = results_in_orthanc(orthanc, original.StudyInstanceUID)
    assert sum(len(v) for v in by_class.values()) == 3  # the PACS never had the film: results only


def test_pacs_down_while_results_are_ready_gets_them_once_it_is_back_exactly_once(
        celery_worker_process, dicom_listener, orthanc_factory, owner, login):
    orthanc = orthanc_factory()
    register(owner, "ORTHANC", orthanc.dicom_port)
    orthanc.stop()
    path = large_pneumothorax_dicoms(2)[0]
    original = pydicom.dcmread(path)
    responses = store(dicom_listener.port, [original], "ORTHANC")  # as the PACS would, before it went down
    assert [int(r.Status) for r in responses] == [0]
    case = Case.objects.get(images__inbound__study_instance_uid=original.StudyInstanceUID)

    def retried():
        delivery = Delivery.objects.filter(case=case).first()
        return delivery is not None and delivery.attempts >= 2 \
            and delivery.status == DeliveryStatus.PENDING
    wait_until(retried, timeout=RESULT_TIMEOUT, poll=0.5, what="the delivery to be retried")
    page = login(owner).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "Sending results to" in page and "No association" in page

    orthanc.start()
    delivery = wait_for_delivery(case=case)
    assert delivery.attempts >= 3
    by_class = results_in_orthanc(orthanc, original.StudyInstanceUID)
    uids = [i["SOPInstanceUID"] for v in by_class.values() for i in v]
    assert len(uids) == 3 == len(set(uids)) == orthanc.count_instances()
    assert sorted(uids) == sorted(s["sop_instance_uid"] for s in delivery.sent)

    # A delivery handed over again (a task redelivered after its worker died) sends nothing...
    assert deliver(delivery.pk) == "skipped"
    # ...and one whose worker died after sending but before recording it sends the same
    # instances, which the PACS keeps once.
    image = case.images.get()
    again = image_results(image, {"PatientID": original.PatientID,
                                  "StudyInstanceUID": original.StudyInstanceUID,
                                  "SOPInstanceUID": original.SOPInstanceUID})
    assert sorted(o.sop_instance_uid for o in again) == sorted(uids)
    send_instances(delivery.node, [o.dataset for o in again])
    assert orthanc.count_instances() == 3


def test_a_delivery_that_gave_up_is_shown_failed_and_an_administrator_retries_it(
        celery_worker_process, dicom_listener, orthanc_factory, owner, administrator, login):
    orthanc = orthanc_factory()
    register(owner, "ORTHANC", orthanc.dicom_port)
    orthanc.stop()
    original = pydicom.dcmread(large_pneumothorax_dicoms(1)[0])
    store(dicom_listener.port, [original], "ORTHANC")
    case = Case.objects.get(images__inbound__study_instance_uid=original.StudyInstanceUID)
    # As the task's last retry does (pending -> failed); the task may hold the delivery for a
    # moment (sending), when the guarded transition refuses: try until it takes.
    wait_until(lambda: Delivery.objects.filter(case=case, attempts__gte=1).exists()
               and give_up(Delivery.objects.get(case=case).pk, "Gave up after the last attempt."),
               timeout=RESULT_TIMEOUT, poll=0.2, what="the delivery to give up")
    delivery = Delivery.objects.get(case=case)
    page = login(owner).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "could <strong>not</strong> be sent" in page and "An administrator can send" in page

    orthanc.start()
    admin = login(administrator)
    response = admin.post(reverse("admin:pacs_delivery_changelist"),
                          {"action": "retry", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    delivered = wait_for_delivery(case=case)
    assert orthanc.count_instances() == 3 and delivered.error == ""
    actions = [a for a in case_audit_actions(case) if a not in ("view_case", "upload")]
    assert actions == ["delivery_failed", "delivery_retry", "results_sent"]


def case_audit_actions(case):
    from webapp.audit.models import AuditEvent

    return AuditEvent.objects.filter(object_id=str(case.pk)).order_by("at", "id") \
        .values_list("action", flat=True)
