"""The REST API (webapp.api, DRF) and its OpenAPI schema and docs (drf-spectacular)."""

from ._environment import env
from ._jobs import CELERY_BROKER_URL

# --- REST API (webapp.api, issue 4) -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",  # Authorization: Token <key>
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
                   "result is for a clinician to review). Authenticate with `Authorization: Token <key>`.",
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
