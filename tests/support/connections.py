"""How a test process and the processes it starts reach the database and the broker."""

from __future__ import annotations

import os
from urllib.parse import quote


def database_url(db: dict, host: str | None = None, port: int | None = None) -> str:
    auth = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        auth += ":" + quote(db["PASSWORD"], safe="")
    return (f"postgres://{auth}@{host or db['HOST'] or '127.0.0.1'}:{port or db['PORT'] or 5432}"
            f"/{db['NAME']}")


def use_broker(url: str | None) -> str | None:
    """Point this (test) process's Celery publishing at another broker (None: back to the
    configured one). Celery reads CELERY_BROKER_WRITE_URL from the environment before its
    settings; the pools are dropped so that the next send connects anew."""
    from webapp.celery_app import app

    previous = os.environ.get("CELERY_BROKER_WRITE_URL")
    if url is None:
        os.environ.pop("CELERY_BROKER_WRITE_URL", None)
    else:
        os.environ["CELERY_BROKER_WRITE_URL"] = url
    from kombu import pools

    pools.reset()  # closes and forgets every producer/connection pool, so none is reused
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    return previous


def process_environment(settings, *, database: str | None = None, broker: str | None = None,
                        **extra: str) -> dict:
    """The environment of a process a test starts (a worker, a management command): this
    process's, on the test settings, with the test database pytest-django created, this
    process's broker and media folder (or the ``database`` / ``broker`` URLs given), and
    ``extra``. So DATABASE_URL / CELERY_BROKER_URL / PRIVATE_MEDIA_ROOT overrides reach it."""
    env = {k: v for k, v in os.environ.items() if k != "CELERY_BROKER_WRITE_URL"}
    env.update({
        "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
        "DATABASE_URL": database or database_url(settings.DATABASES["default"]),
        "CELERY_BROKER_URL": broker or settings.CELERY_BROKER_URL,
        "PRIVATE_MEDIA_ROOT": str(settings.PRIVATE_MEDIA_ROOT),
        "INFERENCE_THREADS": os.environ.get("INFERENCE_THREADS", "2"),
        **extra,
    })
    return env
