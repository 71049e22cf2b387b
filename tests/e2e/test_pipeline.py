"""Upload through the real view, a real Celery worker over Redis runs the real model, and the
result lands in PostgreSQL and private storage."""

import io

import numpy as np
import pytest
from PIL import Image
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse

from tests.support.data import subset_image
from tests.support.pages import upload_through_page
from tests.support.factories import CaseFactory
from webapp.cases.models import Job, JobStatus, ModelVersion
from webapp.cases.storage import private_storage

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_uploaded_xray_is_analysed_by_the_worker(celery_worker_process, login, owner, wait_for_case):
    client = login(owner)
    path = subset_image("dcm")
    case_id = upload_through_page(client, [SimpleUploadedFile(path.name, path.read_bytes())])

    payload = wait_for_case(client, case_id)
    image = payload["images"][0]
    assert payload["status"] == "done", image["error"]
    assert 0.0 <= image["probability"] <= 1.0 and isinstance(image["positive"], bool)
    assert image["model_version"].startswith("unet-")
    assert image["area_cm2"] is not None  # a DICOM with PixelSpacing gives an area in cm²
    assert image["timings_ms"]["inference"] > 0

    job = Job.objects.get(image_id=image["id"])
    assert job.status == JobStatus.DONE and job.attempts == 1 and job.worker.startswith("e2e-")
    for kind, channels in (("mask", None), ("overlay", 3)):
        served = client.get(image[f"{kind}_url"])
        assert served.status_code == 200 and served["Content-Type"] == "image/png"
        pixels = np.asarray(Image.open(io.BytesIO(b"".join(served.streaming_content))))
        assert pixels.shape[:2] == (1024, 1024)
        assert (pixels.ndim == 3 and pixels.shape[2] == channels) if channels else pixels.ndim == 2
    mask = np.asarray(Image.open(private_storage.open(job.mask.name)))
    assert set(np.unique(mask)) <= {0, 255}
    assert ((mask > 0).mean() > 0) == job.positive  # what is outlined is what made the call


def test_worker_start_up_registers_the_shipped_model(login, owner):
    """What a worker runs at start-up (celeryd_after_setup), here in-process: the session's
    worker registered before earlier tests flushed the test database."""
    from ml.core.checkpoint import read_info
    from ml.serving.inference import configured_model_path
    from workers.startup import register_served_model

    register_served_model()
    info = read_info(configured_model_path())
    served_model = ModelVersion.objects.get(version=info.version)
    assert served_model.test_figures["false_negatives"] == info.evaluation["test"]["false_negatives"]
    assert 0 < served_model.test_figures["sensitivity"] <= 1
    page = login(owner).get(reverse("cases:model_versions")).content.decode()
    assert info.version in page and f"misses {served_model.test_figures['false_negatives']}" in page


def test_file_failing_in_the_worker_shows_its_reason(celery_worker_process, login, owner, wait_for_case):
    """The file passes the upload check, then the stored copy is damaged before the job is
    sent (it goes out on commit): the worker must fail the job with the reader's message."""
    with transaction.atomic():
        case = CaseFactory(owner=owner, extension="png", client_address="10.0.0.5")
        name = case.images.get().original.name
        data = private_storage.open(name).read()
        with private_storage.open(name, "wb") as handle:
            handle.write(data[: len(data) // 3])  # truncated on disk

    client = login(owner)
    payload = wait_for_case(client, case.pk)
    assert payload["status"] == "failed"
    assert "damaged or truncated" in payload["images"][0]["error"]
    page = client.get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert "damaged or truncated" in page

    # The worker survived and still serves the next good upload.
    good = CaseFactory(owner=owner, extension="jpg", client_address="10.0.0.5")
    assert wait_for_case(client, good.pk)["status"] == "done"
