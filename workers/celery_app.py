"""The Celery app. Configuration comes from Django settings (CELERY_* names), so the web and the
worker agree on broker, queues and limits. Importing this module is cheap (no torch): the web
process imports it to send jobs."""

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings.local")

app = Celery("workers", include=["workers.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
# Every queue this product knows. A worker started without -Q consumes those its machine can
# serve (workers.startup drops "gpu" where CUDA is absent); on a cluster, pin them with -Q.
app.conf.task_queues = (Queue("cpu"), Queue("gpu"))

from workers import startup  # noqa: E402,F401  (connects the worker signal handlers)
