"""What the in-process benchmarks share: their environment, a fresh PostgreSQL database of
their own (``pneumothorax_bench``) and Django set up and migrated on it."""

from __future__ import annotations

import os

from tests.support.data import REPO

BENCH_DB = "pneumothorax_bench"


def configure_environment() -> dict:
    env = {
        "DJANGO_SETTINGS_MODULE": "webapp.settings.development",
        "DATABASE_URL": os.environ.get("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"),
        "CELERY_BROKER_URL": os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/12"),
        "PRIVATE_MEDIA_ROOT": str(REPO / "var" / "bench-media"),
        "DJANGO_ALLOWED_HOSTS": "testserver,localhost",
    }
    os.environ.update(env)
    return env


def fresh_database(url: str) -> None:
    if not url.endswith(f"/{BENCH_DB}"):
        return  # someone else's database: use as is
    import psycopg

    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {BENCH_DB}")


def django_on_fresh_database() -> dict:
    """Environment, a dropped and re-created bench database, ``django.setup()``, ``migrate``."""
    env = configure_environment()
    fresh_database(env["DATABASE_URL"])
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return env
