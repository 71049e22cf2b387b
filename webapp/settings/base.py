"""Settings shared by every environment. Everything that differs between machines comes from the
environment (django-environ); the per-environment modules only change defaults and hardening.

Embedded defaults: without ``DATABASE_URL`` the site uses SQLite under ``var/``; without
``CELERY_BROKER_URL`` Celery uses kombu's filesystem transport under ``var/broker/``, so that a
fresh machine runs web + a separate worker process with nothing else installed.
"""

from pathlib import Path

from ._environment import BASE_DIR, VAR_DIR, env  # noqa: F401  (re-exported to the environments)

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
    "knox",  # hashed, expiring API tokens (its admin is replaced in webapp.accounts.admin)
    "axes",  # failed-log-in limits (settings/_login_limits.py; issue 24)
    # Two-factor sign-in for local accounts (webapp.accounts.two_factor); before webapp.accounts,
    # whose admin replaces theirs.
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "webapp.accounts",
    "webapp.audit",
    "webapp.cases",
    "webapp.reviews",  # clinician review and feedback (issue 11)
    "webapp.pacs",  # the DICOM listener and results back to the PACS (issue 12)
    "webapp.alerts",  # review-first alerts by webhook and e-mail, acknowledgements (issue 22)
    "webapp.performance",  # this site's figures on reviewed films, the drift alarm (issue 23)
    # REST API v1 (issue 4)
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "webapp.api",
    "webapp.backups",  # manage.py backup / restore (issue 24; docs/operate/backup.md)
    "django_prometheus",  # request metrics (its middleware, first and last below; issue 15)
]

MIDDLEWARE = [
    # First and last: the request latency it measures spans every other middleware.
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response, error pages included (settings/_csp.py).
    "csp.middleware.CSPMiddleware",
    # Database unreachable: a 503 page instead of a 500 (issue 5; also handler500 in urls).
    "webapp.middleware.DatabaseUnavailableMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Two-factor: request.user.is_verified(), then the step a local user still owes (verify or
    # set up) before any other page (webapp.accounts.two_factor_middleware).
    "django_otp.middleware.OTPMiddleware",
    "webapp.accounts.two_factor_middleware.TwoFactorMiddleware",
    # Cache-Control: private, no-store on every answer to a signed-in user (patient data).
    "webapp.cache_control.PrivateResponseMiddleware",
    # Login everywhere: pages opt out explicitly (login, static), never in.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last before the view: a log-in refused by the limits gets axes' lockout response (ours).
    "axes.middleware.AxesMiddleware",
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
    wait its turn instead of failing. Uploads opt out (``non_atomic_requests``): they read their
    files outside any transaction, for seconds, and store the case in a short one (issue 21)."""
    database["ATOMIC_REQUESTS"] = True
    if database["ENGINE"] == "django.db.backends.sqlite3":
        # The embedded default's folder (var/) must exist before the first connection, or a
        # fresh clone's bare `manage.py migrate` fails with "unable to open database file".
        if database["NAME"] and not str(database["NAME"]).startswith((":memory:", "file:")):
            Path(database["NAME"]).parent.mkdir(parents=True, exist_ok=True)
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
# Failed-log-in limits first (django-axes and ours, settings/_login_limits.py): it refuses a
# locked-out name before any backend checks a password, and signs no one in itself.
AUTHENTICATION_BACKENDS = ["webapp.accounts.backends.LoginLimitsBackend",
                           "django.contrib.auth.backends.ModelBackend"]
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
# Reading a file's content (issue 21): in a child process with this much memory and time, at most
# this many at once per web or worker process (ml.core.bounded; the rules: ml.core.limits).
XRAY_DECODE_MEMORY_MB = env.int("XRAY_DECODE_MEMORY_MB", default=1024)
XRAY_DECODE_TIME_S = env.float("XRAY_DECODE_TIME_S", default=10.0)
XRAY_DECODE_CONCURRENCY = env.int("XRAY_DECODE_CONCURRENCY", default=2)
# Django refuses requests with more files than this before any view runs.
DATA_UPLOAD_MAX_NUMBER_FILES = MAX_UPLOAD_FILES
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024  # larger uploads spool to a temp file

ADMIN_URL = env("DJANGO_ADMIN_URL", default="admin/")
# Behind a reverse proxy that sets X-Forwarded-For, audit rows record the client, not the proxy.
AUDIT_TRUST_X_FORWARDED_FOR = env.bool("AUDIT_TRUST_X_FORWARDED_FOR", default=False)

# Backups (webapp.backups, docs/operate/backup.md). The key: `manage.py backup --generate-key`;
# unset, backups are written unencrypted (with a warning). Extra folders: name=/path,...
BACKUP_ENCRYPTION_KEY = env("BACKUP_ENCRYPTION_KEY", default="")
BACKUP_EXTRA_FOLDERS = env.dict("BACKUP_EXTRA_FOLDERS", default={})
BACKUP_ATTEMPTS = env.int("BACKUP_ATTEMPTS", default=3)  # new snapshots after a file was deleted
BACKUP_PG_BIN_DIR = env("BACKUP_PG_BIN_DIR", default="")  # pg_dump/pg_restore; "": from PATH

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("DJANGO_LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# The rest, by subject, in modules of their own.
from ._jobs import *  # noqa: E402,F401,F403
from ._jobs import broker_transport_options  # noqa: E402,F401  (used by the environments)
from ._integration import *  # noqa: E402,F401,F403
from ._api import *  # noqa: E402,F401,F403
from ._csp import *  # noqa: E402,F401,F403
from ._login_limits import *  # noqa: E402,F401,F403
from ._two_factor import *  # noqa: E402,F401,F403
from ._retention import *  # noqa: E402,F401,F403
from ._directory import *  # noqa: E402,F401,F403
from ._ldap import *  # noqa: E402,F401,F403
from ._oidc import *  # noqa: E402,F401,F403
from ._patients import *  # noqa: E402,F401,F403
from ._alerts import *  # noqa: E402,F401,F403
from ._comparison import *  # noqa: E402,F401,F403
from ._performance import *  # noqa: E402,F401,F403
# Directory accounts after the local ones: a local sign-in (the first admin, a service account)
# never waits on the directory, and still works while it is down (settings/_ldap.py).
AUTHENTICATION_BACKENDS = [*AUTHENTICATION_BACKENDS, *LDAP_AUTHENTICATION_BACKENDS,  # noqa: F405
                           *OIDC_AUTHENTICATION_BACKENDS]  # noqa: F405
INSTALLED_APPS = [*INSTALLED_APPS, *OIDC_INSTALLED_APPS]  # noqa: F405
