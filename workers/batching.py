"""Batching the GPU queue's jobs (issue 15): images waiting in the queue go through the network
in one forward pass, each result is then written as for a single job.

The buffer is celery-batches' ``Batches`` task base: its strategy puts each message of the task
in a buffer and hands the buffer to the pool as one call of the task when ``flush_every``
messages are in it (``GPU_BATCH_SIZE``) or when its timer fires, every ``flush_interval``
seconds (``GPU_BATCH_WAIT_MS``), so that one image alone still goes within that wait.

Acknowledgement (celery-batches 0.11, ``Batches.flush``): a task with ``acks_late`` has its
messages acknowledged in the pool's result callback, that is in the worker's main process once
the call has *returned* in the pool process: after every result of the batch is written. What
it does not do is hand a batch back when its pool process dies: billiard then calls the job's
error callback, and celery-batches gives none, so the messages would stay unacknowledged in
this worker (Redis gives them back only after the visibility timeout, an hour) and hold its
prefetch slots. ``AcksLateBatches.flush`` adds that callback: a batch whose process was lost
(SIGKILL, out of memory, the hard time limit) is rejected with requeue, as Celery does for a
single task with ``reject_on_worker_lost``. Delivered again, each job must claim its run again
(``claim_job``: guarded, a new run token, attempts counted), so nothing is written twice; and a
job that arrives already *running* runs alone (``pipeline.analyse_jobs``), so an image that
kills its batch is given up alone after INFERENCE_MAX_ATTEMPTS. An exception in the batch call
itself is logged by celery-batches and the messages acknowledged: ``analyse_jobs`` fails jobs
one by one, and the task sends the jobs again itself when the database is out
(``send_again_later``), before it returns.

The web keeps sending ``workers.tasks.analyse_image`` by name, with the job id only, to
INFERENCE_QUEUE. A worker that consumes the "gpu" queue routes that task's messages into the
batch task's buffer (``BatchGpuJobs``, a consumer bootstep) and raises its prefetch to the
batch size (with acks_late a worker holds at most ``prefetch`` unacknowledged messages, so
without it no batch could ever be larger than 1). So the message, the reconciler and the
worker's re-sending of its orphans stay as they are, and a worker without batching (CPU, or
GPU_BATCH_SIZE=1) still runs the same messages one at a time.
"""

from __future__ import annotations

import logging

from celery import bootsteps
from celery_batches import Batches, SimpleRequest
from celery_batches.trace import apply_batches_task
from django.conf import settings

from webapp.celery_app import app

log = logging.getLogger(__name__)

ANALYSE_TASK = "workers.tasks.analyse_image"
BATCH_TASK = "workers.tasks.analyse_images_batch"
GPU_QUEUE = "gpu"


class AcksLateBatches(Batches):
    """celery-batches' buffer, bounded by GPU_BATCH_SIZE and GPU_BATCH_WAIT_MS; acknowledged
    only after the batch has returned, handed back to the queue if its pool process is lost."""

    abstract = True

    @property
    def flush_every(self) -> int:
        return max(1, int(settings.GPU_BATCH_SIZE))

    @property
    def flush_interval(self) -> float:
        return max(1, int(settings.GPU_BATCH_WAIT_MS)) / 1000

    def flush(self, requests):
        requests = list(requests)
        batch = ([SimpleRequest.from_request(request) for request in requests],)

        def on_return(result):
            for request in requests:  # the batch returned: its results are written
                request.acknowledge()

        def on_lost(exc_info):
            reason = getattr(exc_info, "type", None)
            log.warning("a batch of %d message(s) was lost with its pool process (%s): back to "
                        "the queue", len(requests), getattr(reason, "__name__", reason))
            for request in requests:
                request.reject(requeue=True)

        return self._pool.apply_async(apply_batches_task, (self, batch, 0, None),
                                      callback=on_return, error_callback=on_lost)


def job_id_of(request) -> int | None:
    """The job id of a message: kwargs {"job_pk": id}, or by position (older messages)."""
    return (request.kwargs or {}).get("job_pk", (request.args or [None])[0])


def send_again_later(requests, max_retries: int) -> list[int]:
    """The database is out: send each job again with exponential backoff (as analyse_image's
    autoretry does: a new message, then the old one is acknowledged), by the name and to the
    queue it came with. Returns the ids sent; past ``max_retries`` a job is left to the
    reconciler (the database still says it is queued or running)."""
    from celery.utils.time import get_exponential_backoff_interval

    sent = []
    for request in requests:
        retries = int((request.request_dict or {}).get("retries") or 0)
        job_id = job_id_of(request)
        if retries >= max_retries:
            log.error("job %s: database unavailable after %d retries; left to the reconciler",
                      job_id, retries)
            continue
        countdown = get_exponential_backoff_interval(factor=2, retries=retries, maximum=60,
                                                     full_jitter=True)
        app.send_task(request.name or ANALYSE_TASK, args=request.args, kwargs=request.kwargs,
                      queue=(request.delivery_info or {}).get("routing_key") or GPU_QUEUE,
                      countdown=countdown, retries=retries + 1)
        sent.append(job_id)
    return sent


def batches_gpu_jobs(consumer) -> bool:
    return (GPU_QUEUE in consumer.app.amqp.queues.consume_from
            and int(settings.GPU_BATCH_SIZE) > 1 and BATCH_TASK in consumer.app.tasks)


class BatchGpuJobs(bootsteps.StartStopStep):
    """On a worker that consumes the "gpu" queue: ``analyse_image`` messages go to the batch
    task's buffer, and the prefetch is at least the batch size. Runs after the Tasks step has
    built the strategies, at every (re)connection, before the event loop consumes."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def start(self, c):
        if not batches_gpu_jobs(c):
            return
        c.strategies[ANALYSE_TASK] = c.strategies[BATCH_TASK]
        size = int(settings.GPU_BATCH_SIZE)
        if c.initial_prefetch_count and c.prefetch_multiplier < size:
            c.prefetch_multiplier = size  # also what a reconnection and pool resizes use
            c.initial_prefetch_count = c.max_prefetch_count
            c.qos.value = c.initial_prefetch_count
            c.qos.update()
        log.info("batching the gpu queue's jobs: up to %d image(s) a forward pass, waiting at "
                 "most %d ms; prefetch %s", size, int(settings.GPU_BATCH_WAIT_MS),
                 c.initial_prefetch_count)


app.steps["consumer"].add(BatchGpuJobs)
