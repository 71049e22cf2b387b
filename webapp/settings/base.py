"""Settings shared by every environment. Everything that differs between machines comes from the
environment (django-environ); the per-environment modules only change defaults and hardening.

Embedded defaults: without ``DATABASE_URL`` the site uses SQLite under ``var/``; without
``CELERY_BROKER_URL`` Celery uses kombu's filesystem transport under ``var/broker/``, so that a
fresh machine runs web + a separate worker process with nothing else installed.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# An optional .env file next to manage.py (never committed) for local overrides.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"))

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "webapp.accounts",
    "webapp.audit",
    "webapp.cases",
    "webapp.reviews",  # clinician review and feedback (issue 11)
    "webapp.pacs",  # the DICOM listener and results back to the PACS (issue 12)
    # REST API v1 (issue 4)
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "webapp.api",
    "django_prometheus",  # request metrics (its middleware, first and last below; issue 15)
]

MIDDLEWARE = [
    # First and last: the request latency it measures spans every other middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Database unreachable: a 503 page instead of a 500 (issue 5; also handler500 in urls).
    "webapp.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Login everywhere: pages opt out explicitly (login, static), never in.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "webapp.urls"
WSGI_APPLICATION = "webapp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "webapp" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

def configure_database(database: dict) -> dict:
    """What every environment's database gets: one transaction per request, and, on SQLite,
    settings for concurrent use.

    Every request is one transaction: the action and its audit row commit or roll back together.
    The browser fetches a case's images in parallel and each fetch writes an audit row; with
    SQLite's defaults the concurrent writers get "database is locked" at once. WAL lets readers
    run beside the one writer, IMMEDIATE takes the write lock at BEGIN (a deferred transaction
    that upgrades to a write cannot wait for the lock, it fails), and the timeout makes a writer
    wait its turn instead of failing."""
    database["ATOMIC_REQUESTS"] = True
    if database["ENGINE"] == "django.db.backends.sqlite3":
        options = database.setdefault("OPTIONS", {})
        options.setdefault("timeout", env.int("SQLITE_BUSY_TIMEOUT_S", default=30))
        options.setdefault("transaction_mode", "IMMEDIATE")
        options.setdefault("init_command", "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
    return database


DATABASES = {
    "default": configure_database(env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=0))
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "cases:list"
LOGOUT_REDIRECT_URL = "login"
# Failed-login throttling (webapp.accounts.throttle, counted from the audit log; issue 5).
AUTHENTICATION_BACKENDS = ["webapp.accounts.backends.ThrottledModelBackend"]
LOGIN_THROTTLE_FAILURES = env.int("LOGIN_THROTTLE_FAILURES", default=5)  # per name + address
LOGIN_THROTTLE_ADDRESS_FAILURES = env.int("LOGIN_THROTTLE_ADDRESS_FAILURES", default=50)
LOGIN_THROTTLE_WINDOW_S = env.int("LOGIN_THROTTLE_WINDOW_S", default=15 * 60)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=VAR_DIR / "static")
STATICFILES_DIRS = [BASE_DIR / "webapp" / "static"]

# Uploaded X-rays and results. Deliberately NOT under MEDIA_URL/STATIC: nothing serves this folder
# directly; every file goes through a view that checks the user (webapp.cases.services.files).
PRIVATE_MEDIA_ROOT = env.path("PRIVATE_MEDIA_ROOT", default=VAR_DIR / "private-media")
MAX_UPLOAD_FILE_BYTES = env.int("MAX_UPLOAD_FILE_BYTES", default=50 * 1024 * 1024)
MAX_UPLOAD_FILES = env.int("MAX_UPLOAD_FILES", default=20)
# Django refuses requests with more files than this before any view runs.
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_UPLOAD_FILES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # larger uploads spool to a temp file

ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")
# Behind a reverse proxy that sets X-Forwarded-For, audit rows record the client, not the proxy.
AUDIT_TRUST_X_FORWARDED_FOR = env.bool("AUDIT_TRUST_X_FORWARDED_FOR", default=False)

# --- Celery (read by webapp.celery_app with namespace CELERY) ---------------------------------
def broker_transport_options(broker_url: str) -> dict:
    if broker_url.startswith("filesystem://"):
        # Only named here: webapp.celery_app.ensure_broker_folders creates them when the Celery
        # app's configuration is loaded (settings have no side effects at import).
        folder = Path(env("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
        # This transport never hands a consumed message back: a whole-worker crash loses it,
        # and the worker's restart (workers.startup) or the reconciler sends the job again.
        return {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            "control_folder": str(folder / "control"),
            "store_processed": False,
            "polling_interval": 0.2,
        }
    # Must exceed the hard time limit, or Redis redelivers a job that is still running. A job
    # whose whole worker died is sent again by that worker's restart or by the reconciler, long
    # before this hour is up.
    return {"visibility_timeout": 3600}


CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS = broker_transport_options(CELERY_BROKER_URL)
CELERY_TASK_IGNORE_RESULT = True  # results live in the database, not in a result backend
CELERY_TASK_ACKS_LATE = True  # a job is acknowledged only once it has finished...
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # ...and delivered again if its worker dies mid-job
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # a busy worker does not sit on queued jobs
CELERY_WORKER_CONCURRENCY = env.int("CELERY_WORKER_CONCURRENCY", default=1)  # one model per process
CELERY_TASK_SOFT_TIME_LIMIT = env.int("INFERENCE_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("INFERENCE_HARD_TIME_LIMIT", default=150)
# Loading torch and the model in a fresh pool process takes seconds on a busy machine.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = 120
CELERY_TASK_DEFAULT_QUEUE = "cpu"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# The model file the worker serves (read by workers.model; ml.serving.inference has the same default).
PNEUMOTHORAX_MODEL = Path(env("PNEUMOTHORAX_MODEL", default="")
                          or BASE_DIR / "ml" / "weights" / "pneumothorax-unet.safetensors")
# Which queue the web sends inference jobs to: "cpu", or "gpu" where GPU workers run.
INFERENCE_QUEUE = env("INFERENCE_QUEUE", default="cpu")
INFERENCE_THREADS = env.int("INFERENCE_THREADS", default=0) or None
# How the worker runs the network (ml.serving.backends): torch (eager fp32), torch-bf16, onnx, or
# auto = default_backend(), the fastest this machine supports. Each job records the one it ran on.
INFERENCE_BACKEND = env("INFERENCE_BACKEND", default="auto")
INFERENCE_MAX_ATTEMPTS = env.int("INFERENCE_MAX_ATTEMPTS", default=3)
# Unset: as the model file's operating point was chosen (with or without flip TTA).
INFERENCE_FLIP_TTA = env.bool("INFERENCE_FLIP_TTA") if env.str("INFERENCE_FLIP_TTA", default="") else None
# A worker consuming the "gpu" queue batches its jobs (workers.tasks.analyse_images_batch): up
# to GPU_BATCH_SIZE images in one forward pass, the first waiting at most GPU_BATCH_WAIT_MS for
# others (so one image alone still goes at once). The worker's prefetch is raised to the batch
# size; every message stays unacknowledged until its batch's results are written. 1: no batching.
GPU_BATCH_SIZE = env.int("GPU_BATCH_SIZE", default=16)
GPU_BATCH_WAIT_MS = env.int("GPU_BATCH_WAIT_MS", default=50)
# The reconciler (manage.py reconcile_jobs --every 60; webapp.cases.services.reconcile) sends
# again jobs queued longer than this after their last dispatch, and running jobs whose run
# started longer ago than the hard time limit + grace (issue 5).
RECONCILE_QUEUED_AFTER_S = env.int("RECONCILE_QUEUED_AFTER_S", default=300)
RECONCILE_RUNNING_GRACE_S = env.int("RECONCILE_RUNNING_GRACE_S", default=60)
# De-identify DICOM headers on ingest (PS3.15 basic profile; webapp.cases.services.deidentify).
DICOM_DEIDENTIFY_ON_STORE = env.bool("DICOM_DEIDENTIFY_ON_STORE", default=True)

# --- The DICOM door (webapp.pacs, issue 12) -----------------------------------------------------
# The listener (manage.py dicom_listener): its AE title, address and port; TLS when a certificate
# and key are given (mutual TLS, the node's certificate checked, when a CA file is given too).
DICOM_AE_TITLE = env("DICOM_AE_TITLE", default="TRIAGE")
DICOM_BIND_ADDRESS = env("DICOM_BIND_ADDRESS", default="0.0.0.0")
DICOM_PORT = env.int("DICOM_PORT", default=11112)
DICOM_TLS_CERT = env("DICOM_TLS_CERT", default="")
DICOM_TLS_KEY = env("DICOM_TLS_KEY", default="")
DICOM_TLS_CA = env("DICOM_TLS_CA", default="")
# Instances of one study from one node join one case while they arrive within this many seconds
# of each other and before its results have gone out.
DICOM_STUDY_WINDOW_S = env.int("DICOM_STUDY_WINDOW_S", default=120)
# Results to the PACS: the Celery queue of the sender, network timeouts, and how long to keep
# trying while the PACS is down (exponential backoff, capped; then failed, an admin retries).
DICOM_QUEUE = env("DICOM_QUEUE", default="dicom")
DICOM_NETWORK_TIMEOUT_S = env.int("DICOM_NETWORK_TIMEOUT_S", default=30)
DICOM_DELIVERY_MAX_RETRIES = env.int("DICOM_DELIVERY_MAX_RETRIES", default=10)
DICOM_DELIVERY_BACKOFF_S = env.float("DICOM_DELIVERY_BACKOFF_S", default=5)
DICOM_DELIVERY_BACKOFF_MAX_S = env.float("DICOM_DELIVERY_BACKOFF_MAX_S", default=600)

# --- Metrics for Prometheus (webapp.monitoring, workers.metrics; deploy/README.md "Metrics") ----
# GET /metrics answers only "Authorization: Bearer <METRICS_TOKEN>"; with no token set it refuses
# every request (nothing is exposed by default). METRICS_ALLOWED_NETWORKS (CIDRs, optional) also
# limits the direct peer's address: useful when Prometheus scrapes gunicorn itself, not through
# the proxy (behind nginx every request comes from the proxy's address).
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
# Prometheus scrapes gunicorn over plain HTTP on the internal network (as nginx itself does):
# no redirect to HTTPS for this one path in production.
SECURE_REDIRECT_EXEMPT = [r"^metrics$"]
# A worker serves its job histograms on this port (prometheus_client); 0: off.
WORKER_METRICS_PORT = env.int("WORKER_METRICS_PORT", default=0)
WORKER_METRICS_ADDRESS = env("WORKER_METRICS_ADDRESS", default="0.0.0.0")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- REST API (webapp.api, issue 4) -----------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",  # Authorization: Token <key>
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
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

