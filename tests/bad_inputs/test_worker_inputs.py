"""Through a real worker: unusual but valid images (RGB, 16-bit) complete with a full-size
result; every bad file that somehow reaches a worker (stored copy damaged after the upload
check) fails with its reason, no worker process dies, and the next good upload completes."""

import io

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.urls import reverse
from PIL import Image

from tests.bad_inputs import corpus
from tests.support.factories import CaseFactory, UploadFactory
from tests.support.waiting import wait_for_jobs
from webapp.cases.models import Job, JobStatus
from webapp.cases.storage import private_storage

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_rgb_and_16_bit_images_are_accepted_and_complete(live_worker, login, owner):
    accepted = corpus.accepted()
    files = [SimpleUploadedFile(name, data) for name, data in accepted.values()]
    response = login(owner).post(reverse("cases:upload"), {"images": files})
    assert response.status_code == 302
    jobs = Job.objects.filter(image__case__owner=owner).select_related("image")
    finished = wait_for_jobs([j.pk for j in jobs], timeout=180)
    for job in jobs:
        done = finished[job.pk]
        assert done.status == JobStatus.DONE, (job.image.original_name, done.error)
        mask = np.asarray(Image.open(io.BytesIO(private_storage.open(done.mask.name).read())))
        assert mask.shape == (job.image.height, job.image.width)  # full size, grey
    formats = sorted(j.image.source_format for j in jobs)
    assert formats == ["dicom", "jpeg", "png", "png"]


def test_bad_files_reaching_the_worker_fail_with_reasons_and_crash_nothing(live_worker, owner):
    refused = corpus.refused()
    main_pid, pool_before = live_worker.pid, live_worker.pool_pids()
    with transaction.atomic():
        case = CaseFactory(owner=owner, uploads=UploadFactory.build_batch(len(refused), extension="png"),
                           client_address="10.0.0.5")
        images = list(case.images.order_by("position"))
        for image, (_, data, _) in zip(images, refused.values()):
            with private_storage.open(image.original.name, "wb") as handle:
                handle.write(data)  # the stored copy is now the bad file
    jobs = wait_for_jobs([i.job.pk for i in images], timeout=180)
    for image, (kind, (_, _, message)) in zip(images, refused.items()):
        job = jobs[image.job.pk]
        assert job.status == JobStatus.FAILED and job.attempts == 1, kind
        assert job.error and "internal error" not in job.error, (kind, job.error)
    assert live_worker.pid == main_pid and live_worker.pool_pids() == pool_before  # no crash

    with transaction.atomic():
        good = CaseFactory(owner=owner, extension="dcm", client_address="10.0.0.5")
    job_id = good.images.get().job.pk
    assert wait_for_jobs([job_id])[job_id].status == JobStatus.DONE
