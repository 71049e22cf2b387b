"""The Celery app, with the Django project's configuration (as cookiecutter-django's
config/celery_app.py). Configuration comes from Django settings (CELERY_* names), so the web and
the worker agree on broker, queues and limits. Importing this module is cheap (no torch, no
worker code): the web imports it to send jobs by task name. The worker starts from
``celery -A workers worker``; ``workers.celery_app`` re-exports this app and connects the
worker's signal handlers (``workers.startup``) in worker processes only."""

import os
from pathlib import Path

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")

class TriageCelery(Celery):
    """Celery whose messages leave the time limits to the worker that runs them.

    Since Celery 5.7, ``send_task`` merges into the message the execution options of a task
    registered in the *sending* process, time limits included, and a message's limits win in
    the worker. A sender that had imported the task module (a worker resending, a test, a web
    process configured differently) would impose its own INFERENCE_*_TIME_LIMIT on a worker
    configured otherwise (a 12 s worker once ran a job for the sender's 120 s). A caller may
    still name a limit; none does."""

    def send_task(self, name, *args, time_limit=None, soft_time_limit=None, **options):
        return super().send_task(name, *args, time_limit=time_limit,
                                 soft_time_limit=soft_time_limit, **options)


app = TriageCelery("workers", include=["workers.tasks", "webapp.alerts.tasks",
                                        "webapp.performance.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every queue this product knows. A worker started without -Q consumes those its machine can
# serve (workers.startup drops "gpu" where CUDA is absent); on a cluster, pin them with -Q.
# "dicom" carries the deliveries of results to PACS nodes (webapp.pacs): network work, no model.
# "alerts" carries the review-first alerts (webapp.alerts): network work too, the same light worker.
app.conf.task_queues = (Queue("cpu"), Queue("gpu"), Queue("dicom"), Queue("alerts"))

FILESYSTEM_FOLDER_OPTIONS = ("data_folder_in", "data_folder_out", "processed_folder",
                             "control_folder")


def ensure_broker_folders(conf=None) -> None:
    """Create the folders of kombu's filesystem transport (the embedded default broker) if they
    are missing. Settings only name them; this runs when the app's configuration is loaded, in
    the web before its first send and in the worker before it consumes."""
    conf = app.conf if conf is None else conf
    if not str(conf.broker_url or "").startswith("filesystem://"):
        return
    options = conf.broker_transport_options or {}
    for name in FILESYSTEM_FOLDER_OPTIONS:
        if options.get(name):
            Path(options[name]).mkdir(parents=True, exist_ok=True)


@app.on_after_configure.connect
def _create_broker_folders(sender, source, **kwargs):
    ensure_broker_folders(source)  # the loaded settings (app.conf is not final yet here)
