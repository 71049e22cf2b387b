"""The GPU worker's batch service with the real model (in-process, on the CPU), on real shared
images: one forward pass for the batch gives each job the result it gets alone, and a damaged
file in the batch fails its own job only."""

import io

import numpy as np
import pytest
from PIL import Image

from tests.support.factories import CaseFactory, UploadFactory
from webapp.cases.models import Job, JobStatus
from webapp.cases.services.pipeline import analyse_job, analyse_jobs
from webapp.cases.storage import private_storage

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

IMAGES = [("dcm", 0), ("dcm", 1), ("png", 0), ("jpg", 0)]  # different sizes and formats


@pytest.fixture(scope="module")
def predictor():
    from ml.serving.inference import Predictor, configured_model_path

    return Predictor(configured_model_path(), device="cpu", threads=2)


class Counting:
    """The real predictor, counting its forward passes and their sizes."""

    def __init__(self, predictor):
        self.predictor, self.batches = predictor, []

    def __getattr__(self, name):
        return getattr(self.predictor, name)

    def predict(self, xray):
        self.batches.append(1)
        return self.predictor.predict(xray)

    def predict_batch(self, xrays):
        self.batches.append(len(xrays))
        return self.predictor.predict_batch(xrays)


def new_jobs(owner, images=IMAGES):
    cases = [CaseFactory(owner=owner, uploads=[UploadFactory(extension=e, index=i)]) for e, i in images]
    return [case.images.get().job for case in cases]


def png(name):
    with private_storage.open(name, "rb") as handle:
        return np.asarray(Image.open(io.BytesIO(handle.read())))


def result(job_id):
    job = Job.objects.get(pk=job_id)
    assert job.status == JobStatus.DONE, job.error
    return job, png(job.mask.name)


def test_batch_gives_each_job_its_single_run_result(owner, predictor):
    alone, batched = new_jobs(owner), new_jobs(owner)
    counting = Counting(predictor)
    for job in alone:
        assert analyse_job(job.pk, counting) == "done"
    assert analyse_jobs([j.pk for j in batched], counting, worker="gpu-1") == {
        j.pk: "done" for j in batched}
    assert counting.batches == [1, 1, 1, 1, len(IMAGES)]  # the batch: one forward pass

    for single, batch in zip(alone, batched):
        (a, mask_a), (b, mask_b) = result(single.pk), result(batch.pk)
        assert b.attempts == 1 and b.worker == "gpu-1"
        assert b.probability == pytest.approx(a.probability, abs=1e-4)
        assert (b.positive, b.review_first, b.model_version) == (a.positive, a.review_first,
                                                                 a.model_version)
        assert b.area_fraction == pytest.approx(a.area_fraction, abs=1e-4)
        assert mask_b.shape == mask_a.shape and np.mean(mask_a != mask_b) < 1e-4
        assert b.findings.keys() == a.findings.keys()
        assert (b.findings.get("side"), b.findings.get("zones")) == (a.findings.get("side"),
                                                                     a.findings.get("zones"))
        assert set(b.timings_ms) == set(a.timings_ms)


def test_damaged_file_in_a_batch_fails_only_its_job(owner, predictor):
    batch = new_jobs(owner, IMAGES[:3])
    damaged = batch[1]
    with private_storage.open(damaged.image.original.name, "wb") as handle:  # storage corruption
        handle.write(b"DICM" * 8)
    counting = Counting(predictor)
    outcomes = analyse_jobs([j.pk for j in batch], counting)
    assert outcomes == {batch[0].pk: "done", damaged.pk: "failed", batch[2].pk: "done"}
    assert counting.batches == [2]
    failed = Job.objects.get(pk=damaged.pk)
    assert failed.status == JobStatus.FAILED and failed.attempts == 1 and failed.error
    assert not failed.mask.name and not failed.overlay.name
    for job in (batch[0], batch[2]):
        done, mask = result(job.pk)
        assert mask.shape == (done.image.height, done.image.width)
