"""The GPU worker's batch service and task, in-process with a stub predictor: one forward pass
for the batch, each job claimed and finished as a single job is, a failure confined to its job,
a job of a run that died run alone, and the jobs sent again when the database is out."""

import pytest

from tests.support.factories import JobFactory
from tests.support.stubs import StubPredictor
from webapp.cases.models import Job, JobStatus
from webapp.cases.services import jobs
from webapp.cases.services.pipeline import analyse_jobs
from webapp.cases.storage import private_storage

pytestmark = pytest.mark.django_db


class BatchStub(StubPredictor):
    """The stub, with ``predict_batch``; ``batches`` records each call's size."""

    def __init__(self, *args, fail_batches: bool = False, fail_single: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches, self.singles = [], 0
        self.fail_batches, self.fail_single = fail_batches, fail_single

    def predict_batch(self, xrays):
        self.batches.append(len(xrays))
        if len(xrays) > 1 and self.fail_batches:
            raise RuntimeError("the batch does not fit")
        if len(xrays) == 1:
            self.singles += 1
            if self.singles == self.fail_single:
                raise RuntimeError("this image breaks the network")
        return [self.predict(x) for x in xrays]


def test_batch_runs_one_forward_pass_and_finishes_each_job_as_a_single_run(owner):
    predictor = BatchStub()
    batch = JobFactory.create_batch(3, owner=owner)
    outcomes = analyse_jobs([j.pk for j in batch], predictor, worker="gpu-1")
    assert outcomes == {j.pk: "done" for j in batch}
    assert predictor.batches == [3]
    for job in Job.objects.filter(pk__in=[j.pk for j in batch]):
        assert job.status == JobStatus.DONE and job.attempts == 1 and job.worker == "gpu-1"
        assert job.probability == 0.9 and job.model_version == "stub-1"
        assert set(job.timings_ms) >= {"queue_wait", "read", "inference", "render", "store"}
        assert job.mask.name.endswith(f"mask-{job.run_token[:12]}.png")
        assert private_storage.exists(job.overlay.name)


def test_a_job_twice_in_a_batch_or_already_finished_runs_once(owner):
    predictor = BatchStub()
    done, fresh = JobFactory.create_batch(2, owner=owner)
    assert analyse_jobs([done.pk], predictor) == {done.pk: "done"}
    outcomes = analyse_jobs([done.pk, fresh.pk, fresh.pk], predictor)
    assert outcomes == {done.pk: "skipped", fresh.pk: "done"}
    assert predictor.batches == [1, 1] and Job.objects.get(pk=fresh.pk).attempts == 1


def test_damaged_file_fails_its_own_job_only(owner):
    predictor = BatchStub()
    first, damaged, last = JobFactory.create_batch(3, owner=owner)
    with private_storage.open(damaged.image.original.name, "wb") as handle:  # storage corruption
        handle.write(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    outcomes = analyse_jobs([first.pk, damaged.pk, last.pk], predictor)
    assert outcomes == {first.pk: "done", damaged.pk: "failed", last.pk: "done"}
    assert predictor.batches == [2]  # the damaged one never reached the network
    assert "damaged or truncated" in Job.objects.get(pk=damaged.pk).error


def test_a_batch_that_raises_is_predicted_one_image_at_a_time(owner):
    predictor = BatchStub(fail_batches=True, fail_single=2)
    batch = JobFactory.create_batch(3, owner=owner)
    outcomes = analyse_jobs([j.pk for j in batch], predictor)
    assert predictor.batches == [3, 1, 1, 1]
    assert list(outcomes.values()) == ["done", "failed", "done"]
    error = Job.objects.get(pk=batch[1].pk).error
    assert "internal error" in error and "breaks" not in error


def test_job_of_a_run_that_died_runs_alone_after_the_batch(owner):
    predictor = BatchStub()
    lost, first, second = JobFactory.create_batch(3, owner=owner)
    jobs.claim_job(lost.pk, "gpu-0")  # its batch's worker died: still running, attempt 1
    outcomes = analyse_jobs([lost.pk, first.pk, second.pk], predictor, worker="gpu-1")
    assert outcomes == {lost.pk: "done", first.pk: "done", second.pk: "done"}
    assert predictor.batches == [2] and predictor.calls == 3  # the batch without it, then it alone
    assert Job.objects.get(pk=lost.pk).attempts == 2
    assert Job.objects.get(pk=first.pk).attempts == 1


def test_job_lost_too_often_is_given_up_in_a_batch(owner, settings):
    settings.INFERENCE_MAX_ATTEMPTS = 2
    predictor = BatchStub()
    poison, good = JobFactory.create_batch(2, owner=owner)
    jobs.claim_job(poison.pk)
    jobs.claim_job(poison.pk)  # two batches died with it
    assert analyse_jobs([poison.pk, good.pk], predictor) == {poison.pk: "skipped", good.pk: "done"}
    assert "stopped 2 times" in Job.objects.get(pk=poison.pk).error


def requests_for(*job_ids, retries=0):
    from celery_batches import SimpleRequest

    return [SimpleRequest(id=f"t{job_id}", name="workers.tasks.analyse_image", args=(),
                          kwargs={"job_pk": job_id}, delivery_info={"routing_key": "gpu"},
                          hostname="gpu-7@host", ignore_result=True, reply_to=None,
                          correlation_id=None, request_dict={"retries": retries})
            for job_id in job_ids]


def test_batch_task_runs_the_messages_jobs(owner, monkeypatch):
    import workers.model
    from workers.tasks import analyse_images_batch

    predictor = BatchStub()
    monkeypatch.setattr(workers.model, "get_predictor", lambda: predictor)
    batch = JobFactory.create_batch(2, owner=owner)
    legacy = JobFactory(owner=owner)  # a message queued before kwargs: the id by position
    requests = requests_for(*[j.pk for j in batch]) + requests_for(legacy.pk)
    requests[-1].args, requests[-1].kwargs = (legacy.pk,), {}
    outcomes = analyse_images_batch.run(requests)
    assert outcomes == {batch[0].pk: "done", batch[1].pk: "done", legacy.pk: "done"}
    assert predictor.batches == [3]
    assert set(Job.objects.values_list("worker", flat=True)) == {"gpu-7@host"}


def test_batch_task_sends_its_jobs_again_when_the_database_is_out(owner, monkeypatch):
    from django.db import OperationalError

    import webapp.cases.services.pipeline as pipeline
    import workers.model
    from webapp.celery_app import app
    from workers import batching
    from workers.tasks import analyse_image, analyse_images_batch

    def database_down(*args, **kwargs):
        raise OperationalError("connection refused")

    sent = []
    monkeypatch.setattr(workers.model, "get_predictor", BatchStub)
    monkeypatch.setattr(pipeline, "claim_job", database_down)
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)))
    assert analyse_images_batch.run(requests_for(11, 12, retries=3)) == {}
    assert [(name, o["kwargs"], o["queue"], o["retries"]) for name, o in sent] == [
        ("workers.tasks.analyse_image", {"job_pk": 11}, "gpu", 4),
        ("workers.tasks.analyse_image", {"job_pk": 12}, "gpu", 4)]
    assert all(0 <= o["countdown"] <= 16 for _, o in sent)  # 2 * 2**3, full jitter

    sent.clear()  # past the retries analyse_image allows: left to the reconciler
    assert batching.send_again_later(requests_for(13, retries=analyse_image.max_retries),
                                     analyse_image.max_retries) == []
    assert sent == []


def test_dispatch_is_unchanged_for_the_gpu_queue(monkeypatch, settings):
    """The web knows nothing of batches: the gpu worker routes analyse_image to its buffer."""
    from webapp.celery_app import app

    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **options: sent.append((name, options)))
    settings.INFERENCE_QUEUE = "gpu"
    jobs.dispatch_job(42)
    assert sent == [("workers.tasks.analyse_image",
                     {"kwargs": {"job_pk": 42}, "queue": "gpu", "retry": True,
                      "retry_policy": sent[0][1]["retry_policy"]})]
