"""The worker's view of the Celery app: the app itself lives with the Django project's
configuration (``webapp.celery_app``); importing it from here also connects the worker's signal
handlers (``workers.startup``). Only worker processes import this module (``celery -A workers
worker`` loads ``workers``); the web imports ``webapp.celery_app`` and sends jobs by name."""

from webapp.celery_app import app

from workers import startup  # noqa: F401  (connects the worker signal handlers)

__all__ = ["app"]
