"""pytest: the real PostgreSQL and Redis on 127.0.0.1 unless the environment names others.

pytest-django creates ``test_<NAME>`` from DATABASE_URL; the end-to-end worker process is
pointed at that same test database and Redis database by tests/support/worker_fixtures.py.
"""

from .base import *  # noqa: F401,F403
from .base import VAR_DIR, broker_transport_options, configure_database, env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY", default="test-only-insecure-key")
PATIENT_KEY_SECRET = env("PATIENT_KEY_SECRET", default="test-only-patient-key-secret")
DATABASES = {"default": configure_database(
    env.db("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/pneumothorax"))}
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="redis://127.0.0.1:6379/11")
# The embedded-defaults tests run processes on SQLite and the filesystem broker with these settings.
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=VAR_DIR / "test-media")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# No collectstatic in tests: serve static files straight from the app folders.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
# A PACS that is down comes back within a test's patience: retry within seconds, not minutes.
DICOM_DELIVERY_BACKOFF_S = env.float("DICOM_DELIVERY_BACKOFF_S", default=1)
DICOM_DELIVERY_BACKOFF_MAX_S = env.float("DICOM_DELIVERY_BACKOFF_MAX_S", default=4)
DICOM_NETWORK_TIMEOUT_S = env.int("DICOM_NETWORK_TIMEOUT_S", default=10)
