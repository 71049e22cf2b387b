"""For developers only (``DJANGO_SETTINGS_MODULE=webapp.settings.development``): DEBUG on, so
Django shows its debug pages, and an insecure key unless one is given. What runs the product
for users is ``webapp.settings.local`` (scripts/run) or ``webapp.settings.production``."""

from .base import *  # noqa: F401,F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-never-use-in-production")
PATIENT_KEY_SECRET = env("PATIENT_KEY_SECRET", default="dev-only-patient-key-secret")
