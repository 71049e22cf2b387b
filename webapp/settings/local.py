"""One machine, as ``scripts/run`` and the bare entry points (``gunicorn webapp.wsgi``,
``celery -A workers worker``, ``manage.py``) start it: DEBUG off, the embedded defaults allowed
(SQLite, the filesystem broker), plain HTTP on the machine itself.

DEBUG stays off whatever the environment says: Django's debug pages list every URL pattern and
setting of the site to whoever gets an error, a clinician who opens someone else's case
included. Developers who want them use ``webapp.settings.development``. For a site that other
machines reach, use ``webapp.settings.production`` (HTTPS, hardened cookies, required secrets).
"""

import os
from pathlib import Path

from django.core.management.utils import get_random_secret_key

from .base import *  # noqa: F401,F403
from .base import VAR_DIR, env


def persistent_secret_key(path: Path) -> str:
    """A random key made once per installation and kept (owner-only) under var/: sessions
    survive restarts, and no two installations share a key that sits in the source code."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(descriptor, "w") as handle:
        handle.write(get_random_secret_key())
    return path.read_text().strip()


DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or persistent_secret_key(VAR_DIR / "secret-key")
# Made once and kept, like the secret key: the patient links must outlive restarts (_patients.py).
PATIENT_KEY_SECRET = env("PATIENT_KEY_SECRET", default="") or persistent_secret_key(
    VAR_DIR / "patient-key-secret")
