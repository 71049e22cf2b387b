"""PHI never goes into task messages or logs: the message body holds the job id only, and
neither the web's nor the worker's log mentions the patient or the file name."""

import io
import logging

import pydicom
import pytest
from celery.signals import before_task_publish
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.data import subset_image
from tests.support.waiting import wait_for_jobs
from webapp.cases.models import Job, JobStatus

pytestmark = [pytest.mark.faults, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PATIENT = "PHIMARKER^JANE"
PATIENT_ID = "MRN-PHI-7731"
FILE_NAME = "PHIMARKER-jane-doe-chest.dcm"


def identified_dicom() -> bytes:
    dataset = pydicom.dcmread(subset_image("dcm"))
    dataset.PatientName, dataset.PatientID = PATIENT, PATIENT_ID
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def test_task_message_holds_only_the_job_id_and_logs_hold_no_phi(live_worker, login, owner, caplog):
    published = []

    def capture(sender=None, body=None, headers=None, **kwargs):
        published.append((sender, body, headers))

    before_task_publish.connect(capture)
    caplog.set_level(logging.DEBUG)
    try:
        response = login(owner).post(reverse("cases:upload"), {
            "images": [SimpleUploadedFile(FILE_NAME, identified_dicom())]})
    finally:
        before_task_publish.disconnect(capture)
    assert response.status_code == 302
    job = Job.objects.get(image__case__owner=owner)

    assert len(published) == 1
    sender, body, headers = published[0]
    args, kwargs, _options = body
    assert sender == "workers.tasks.analyse_image"
    assert list(args) == [] and kwargs == {"job_pk": job.pk}  # ids only
    whole = repr(body) + repr(headers)
    for secret in (PATIENT, PATIENT_ID, "PHIMARKER", str(owner.username)):
        assert secret not in whole

    assert wait_for_jobs([job.pk])[job.pk].status == JobStatus.DONE
    logs = live_worker.log_text() + caplog.text
    assert "PHIMARKER" not in logs and PATIENT_ID not in logs
