"""The worker's job metrics for Prometheus (issue 15): how long the model took and how long the
user waited, observed when a job finishes, served by the worker on WORKER_METRICS_PORT (off: 0).

Jobs run in prefork pool processes, the port is served by the main process: prometheus_client's
multiprocess mode joins them (each pool process writes its figures to files in a folder, the
main process reads them all at each scrape). The folder is this worker's own, made at start-up
and removed at shutdown: no figures of an earlier life or of another worker mix in.

Observed from Celery's task_postrun signal (single jobs and the gpu queue's batches), from what
the job's row says (the services stay free of metric code): ``triage_inference_seconds`` (the
model's time as the pipeline recorded it, ``timings_ms["inference"]``; jobs done) and
``triage_end_to_end_seconds`` (queued_at -> finished_at: upload to result, queue wait and
retries included; jobs done or failed), both by queue. The broker's queues and the jobs per
status are the web's /metrics (webapp.monitoring); Celery's task events are Flower's /metrics.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile

from django.conf import settings

log = logging.getLogger(__name__)

ANALYSE_TASK = "workers.tasks.analyse_image"
BATCH_TASK = "workers.tasks.analyse_images_batch"  # the gpu queue's batches (workers.batching)
FINISHED = ("done", "failed")
PORT = settings.WORKER_METRICS_PORT

if PORT:
    # Before prometheus_client is first imported: it picks in-memory or file-backed values once,
    # at import. Django's set-up (django_prometheus) imports it later in the worker's start.
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="triage-worker-metrics-")

from celery.signals import task_postrun, worker_ready, worker_shutdown  # noqa: E402
from prometheus_client import CollectorRegistry, Histogram, start_http_server  # noqa: E402
from prometheus_client import values  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector  # noqa: E402

if PORT and values.ValueClass is values.MutexValue:
    # Something imported prometheus_client before this module (the import order changed): the
    # metrics made from here on must still write to the folder, or the port would serve nothing.
    values.ValueClass = values.get_value_class()

# Seconds. CPU inference is 0.4-3 s, a GPU's well under 0.5 s; the end to end adds the queue.
INFERENCE = Histogram("triage_inference_seconds", "Model inference time of finished jobs",
                      ["queue"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120))
END_TO_END = Histogram("triage_end_to_end_seconds",
                       "From upload (queued) to the result (done or failed), per job",
                       ["queue", "outcome"],
                       buckets=(0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600))


def observe_jobs(finished: dict[int, tuple[str, str]]) -> None:
    """``finished``: {job id: (outcome, queue)}, outcomes "done" or "failed"."""
    from webapp.cases.models import Job

    rows = Job.objects.filter(pk__in=list(finished), finished_at__isnull=False)  # deleted: gone
    for job in rows.values("pk", "queued_at", "finished_at", "timings_ms"):
        outcome, queue = finished[job["pk"]]
        if outcome == "done" and "inference" in (job["timings_ms"] or {}):
            INFERENCE.labels(queue).observe(job["timings_ms"]["inference"] / 1000)
        END_TO_END.labels(queue, outcome).observe(
            max(0.0, (job["finished_at"] - job["queued_at"]).total_seconds()))


def finished_jobs(task, args, kwargs, retval) -> dict[int, tuple[str, str]]:
    """{job id: (outcome, queue)} of the jobs a task finished: analyse_image returns the
    outcome of its one job; the gpu queue's batch task (workers.batching) returns {job id:
    outcome} for its messages (celery-batches' SimpleRequests, its one argument). Skipped or
    superseded runs are left out: another run produced (or will produce) the result."""
    if task.name == ANALYSE_TASK and retval in FINISHED:
        job_pk = (kwargs or {}).get("job_pk", args[0] if args else None)
        return {int(job_pk): (retval, _queue(task.request))}
    if task.name == BATCH_TASK and isinstance(retval, dict) and args:
        queues = {_job_of(request): _queue(request) for request in args[0]}
        return {int(pk): (outcome, queues.get(int(pk), "")) for pk, outcome in retval.items()
                if outcome in FINISHED}
    return {}


def _job_of(request) -> int | None:
    job_pk = (request.kwargs or {}).get("job_pk", (request.args or [None])[0])
    return None if job_pk is None else int(job_pk)


def _queue(request) -> str:
    return (getattr(request, "delivery_info", None) or {}).get("routing_key") or ""


def _observe_finished_task(sender=None, task=None, args=None, kwargs=None, retval=None, **extra):
    try:
        finished = finished_jobs(task, args, kwargs, retval)
        if finished:
            observe_jobs(finished)
    except Exception:  # a metric must never turn a finished job into an error
        log.warning("could not observe the metrics of task %s", getattr(task, "name", "?"),
                    exc_info=True)


def _serve(sender=None, **kwargs):
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    start_http_server(PORT, addr=settings.WORKER_METRICS_ADDRESS, registry=registry)
    log.info("metrics on %s:%s", settings.WORKER_METRICS_ADDRESS, PORT)


def _remove_folder(sender=None, **kwargs):
    shutil.rmtree(os.environ.get("PROMETHEUS_MULTIPROC_DIR", ""), ignore_errors=True)


if PORT:
    task_postrun.connect(_observe_finished_task, weak=False)
    worker_ready.connect(_serve, weak=False)  # the main process, once the pool has started
    worker_shutdown.connect(_remove_folder, weak=False)
