"""TEST ONLY Celery entry point: ``celery -A tests.support.fault_worker worker ...`` runs the
product's worker (``workers.app``, with its start-up signal handlers and its tasks) plus a fault
hook, switched on by ``TRIAGE_TEST_FAULTS=1`` in the worker's environment. Nothing of this is in
the product: production workers start from ``celery -A workers worker``.

With the hook on, a job whose image's display name starts with

- ``fault-slow`` takes ``TRIAGE_TEST_SLOW_S`` (default 5) seconds longer,
- ``fault-hang`` hangs (until the task's time limit stops it),
- ``fault-crash`` kills its worker pool process with SIGKILL, at every delivery,

at the moment the pipeline hands the X-ray to the predictor: the job is claimed (``running``,
attempt counted, run token set) and its file read and checked, nothing is stored yet.

How: a ``task_prerun`` handler notes, for each ``analyse_image`` task, the display name of its
job's image (the task carries the job id only, ``job_pk``), and the predictor that
``workers.model.get_predictor`` hands to the task is wrapped so that its ``predict`` meets the
fault first.

The batch task (``analyse_images_batch``, a gpu worker's) meets the same faults: while it runs,
the pipeline's ``claim_job`` notes the display name of each job it claims; the batch's forward
pass (``predict_batch``) meets the first fault among the jobs claimed for it (so a batch with a
``fault-slow`` image sleeps once, after every claim and before any result is stored), and a job
run alone in the batch (``predict``) meets its own."""

from __future__ import annotations

import os
import signal
import time

from celery.signals import task_postrun, task_prerun

import workers.model
from workers import app

__all__ = ["app"]

TASK = "workers.tasks.analyse_image"
BATCH_TASK = "workers.tasks.analyse_images_batch"
ENABLED = os.environ.get("TRIAGE_TEST_FAULTS", "0").lower() in ("1", "true", "yes", "on")
SLOW_S = float(os.environ.get("TRIAGE_TEST_SLOW_S", "5"))

_current_name: str | None = None  # the image of the task this (pool) process runs now
_in_batch = False  # the task running now is the batch task
_batch_names: list[str] = []  # images claimed by the batch since its last prediction


def inject_fault(name: str | None) -> None:
    if not name:
        return
    if name.startswith("fault-slow"):
        time.sleep(SLOW_S)
    elif name.startswith("fault-hang"):
        time.sleep(3600)
    elif name.startswith("fault-crash"):
        os.kill(os.getpid(), signal.SIGKILL)


def _image_name(job_pk) -> str | None:
    from django.db import DatabaseError

    from webapp.cases.models import Job

    try:
        return Job.objects.filter(pk=job_pk).values_list("image__original_name", flat=True).first()
    except DatabaseError:  # the claim meets the same outage: the task retries, and so do we
        return None


def _noting_claims(claim_job):
    def claim_and_note(job_id, worker=""):
        global _current_name
        job = claim_job(job_id, worker)
        if job is not None and _in_batch:
            _current_name = job.image.original_name
            _batch_names.append(_current_name)
        return job
    claim_and_note.noting = True
    return claim_and_note


def remember_batch():
    global _in_batch, _current_name
    from webapp.cases.services import pipeline  # Django is set up by now (not at import)

    if not getattr(pipeline.claim_job, "noting", False):
        pipeline.claim_job = _noting_claims(pipeline.claim_job)
    _in_batch, _current_name = True, None
    _batch_names.clear()


def remember_job(sender=None, task=None, args=None, kwargs=None, **_):
    global _current_name
    if getattr(task, "name", None) == BATCH_TASK:
        return remember_batch()
    if getattr(task, "name", None) != TASK:
        return
    # Sent as kwargs={"job_pk": id}; older messages carry it by position (workers.tasks).
    job_pk = (kwargs or {}).get("job_pk", (args or [None])[0])
    _current_name = _image_name(job_pk)


def forget_job(**_):
    global _current_name, _in_batch
    _current_name, _in_batch = None, False
    _batch_names.clear()


class FaultyPredictor:
    """The worker's predictor, meeting the fault of the current job before each prediction."""

    def __init__(self, predictor):
        self._predictor = predictor

    def __getattr__(self, name):
        return getattr(self._predictor, name)

    def predict(self, xray):
        _batch_names.clear()
        inject_fault(_current_name)
        return self._predictor.predict(xray)

    def predict_batch(self, xrays):
        names = list(_batch_names)
        _batch_names.clear()
        inject_fault(next((n for n in names if n and n.startswith("fault-")), None))
        return self._predictor.predict_batch(xrays)


_product_get_predictor = workers.model.get_predictor


def get_predictor():
    return FaultyPredictor(_product_get_predictor())


if ENABLED:
    task_prerun.connect(remember_job, weak=False)
    task_postrun.connect(forget_job, weak=False)
    # workers.tasks and workers.startup look get_predictor up in workers.model at call time.
    workers.model.get_predictor = get_predictor
