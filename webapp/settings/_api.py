"""The REST API (webapp.api, DRF) and its OpenAPI schema and docs (drf-spectacular)."""

from ._environment import env
from ._jobs import CELERY_BROKER_URL

# --- REST API (webapp.api, issue 4) -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Authorization: Token <key>; hashed at rest, expiring (webapp.accounts, knox)
        "webapp.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # DRF's three, with a JSON parser that answers 400 to a body nested too deeply (not a 500).
    "DEFAULT_PARSER_CLASSES": ["webapp.api.parsers.JSONParser",
                               "rest_framework.parsers.FormParser",
                               "rest_framework.parsers.MultiPartParser"],
    "DEFAULT_THROTTLE_CLASSES": ["webapp.api.throttling.PerUserThrottle"],
    "DEFAULT_PAGINATION_CLASS": "webapp.api.pagination.CasePagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "webapp.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
# API tokens: a user creates their own on the "API tokens" page (or an administrator with
# manage.py create_api_token), for at most API_TOKEN_TTL_DAYS days; only a digest is stored.
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)
KNOX_TOKEN_MODEL = "accounts.ApiToken"
# knox's migrations create its own token table even when the model is swapped out (they do not
# mark it swappable); without them no such table is made (a swapped model is never synced).
MIGRATION_MODULES = {"knox": None}
REST_KNOX = {
    "TOKEN_TTL": None,  # every token is given its own expiry (webapp.accounts.services)
    "TOKEN_PREFIX": "pt_",  # recognisable by secret scanners in a leaked log or repository
    "AUTO_REFRESH": False,  # an expiry date the hospital can plan around, not a sliding one
}
# Per user (per client address when anonymous), counted in Redis when the broker is Redis so that
# every web process shares the count; a plain "N/second|minute|hour|day".
API_THROTTLE_RATES = {
    "user": env("API_THROTTLE_USER", default="1200/minute"),
    "anon": env("API_THROTTLE_ANON", default="60/minute"),
}
API_THROTTLE_CACHE_URL = env(
    "API_THROTTLE_CACHE_URL",
    default=CELERY_BROKER_URL if CELERY_BROKER_URL.startswith("redis") else "locmemcache://api-throttle")
SPECTACULAR_SETTINGS = {
    "TITLE": "Pneumothorax Triage API",
    "DESCRIPTION": "Submit chest X-rays in bulk and read the results (decision support: every "
                   "result is for a clinician to review). Authenticate with `Authorization: Token <key>`: "
                   "each user makes their own tokens, which expire, on the site's API tokens page.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Login everywhere (issue 5): the schema holds no patient data, but a hospital's API
    # surface is for its own users; a client gets it with its token.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",  # served from drf-spectacular-sidecar: no CDN
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}
