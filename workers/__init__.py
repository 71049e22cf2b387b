"""The Celery side of the product. ``celery -A workers worker`` finds ``workers.app``."""

from workers.celery_app import app

__all__ = ["app"]
