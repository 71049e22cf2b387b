"""Worker start-up: refuse to start without a model, choose queues, load the model once per
pool process. These run only in `celery worker` processes, never in the web."""

import logging
import os
import sys

from celery.signals import celeryd_after_setup, worker_process_init

from workers import metrics  # noqa: F401  (job histograms on WORKER_METRICS_PORT; off by default)
# Before load_model below: its pool-process handler must ignore SIGTERM before the model loads.
from workers import shutdown  # noqa: F401  (a clean warm shutdown on a group-wide SIGTERM)

try:
    from workers import batching  # noqa: F401  (its consumer step batches the gpu queue's jobs)
except ModuleNotFoundError as missing:  # celery-batches: said at start-up, jobs run one by one
    if missing.name != "celery_batches":
        raise
    batching = None

log = logging.getLogger(__name__)

GPU_QUEUE = "gpu"
INFERENCE_QUEUES = frozenset({"cpu", GPU_QUEUE})
# Set in the main process before the pool forks: whether this worker runs inference at all (a
# worker on the "dicom" queue only sends results to PACS nodes and needs no model).
serves_inference = True


@celeryd_after_setup.connect
def check_model_and_choose_queues(sender, instance, conf, **kwargs):
    global serves_inference
    from workers.model import check_model, cuda_available

    queues = instance.app.amqp.queues
    if not INFERENCE_QUEUES & set(queues.consume_from):
        serves_inference = False
        log.info("worker %s consumes %s only: no model loaded", sender,
                 ", ".join(sorted(queues.consume_from)))
        return
    problem = check_model()
    if problem:
        # The product never runs an untrained model as if it were a result.
        print(f"ERROR: the worker cannot start: {problem}", file=sys.stderr, flush=True)
        os._exit(78)  # EX_CONFIG; SystemExit would be swallowed by Celery's signal dispatch
    register_served_model()
    resend_orphans(sender)
    selected = set(queues.consume_from)
    consuming_everything = selected == set(queues)  # no -Q on the command line
    if consuming_everything and GPU_QUEUE in selected and not cuda_available():
        queues.deselect(GPU_QUEUE)
    log.info("worker %s consumes queues: %s", sender, ", ".join(sorted(queues.consume_from)))
    if GPU_QUEUE in queues.consume_from and batching is None:
        log.warning("celery-batches is not installed: the gpu queue's jobs run one at a time")


def register_served_model() -> None:
    """Tell the web which model this worker serves and how well it was measured to do. A
    database that is down at start-up must not keep the worker from serving jobs (they wait for
    the database anyway); the row is written at the next start."""
    from django.db import DatabaseError, connections

    from webapp.cases.services.model_files import ModelRejected
    from webapp.cases.services.model_versions import register_model_version
    from webapp.cases.services.registry import ensure_initial_model
    from workers.model import model_summary

    try:
        row = register_model_version(**model_summary())
        log.info("registered model %s", row.version)
        # An empty registry starts with this file as its active model, so that a model promoted
        # later can be rolled back to it (the weights' hash checked, the pool loads it anyway).
        if ensure_initial_model(build=False):
            log.info("model registry: %s is the initial active model", row.version)
    except ModelRejected as exc:
        log.warning("the configured model is not recorded in the model registry: %s", exc)
    except DatabaseError as exc:
        log.warning("could not register the model version (database unavailable: %s)", exc)
    finally:
        connections.close_all()  # pool processes fork from this one: no shared connection


def resend_orphans(nodename: str) -> None:
    """Jobs left running under this node name died with this worker's previous life (SIGKILL,
    power loss): send them again now rather than after the broker's visibility timeout."""
    from django.db import DatabaseError, connections

    from webapp.cases.services.reconcile import resend_orphaned_jobs

    try:
        resend_orphaned_jobs(str(nodename))
    except DatabaseError as exc:  # the reconciler sends them once the database is back
        log.warning("could not look for orphaned jobs (database unavailable: %s)", exc)
    finally:
        connections.close_all()


@worker_process_init.connect
def load_model(**kwargs):
    # Each pool process loads the model once, before its first job, so no job pays for it.
    if not serves_inference:
        return
    from workers.model import get_predictor

    get_predictor()
