"""Alerts that reach a person (webapp.alerts, issue 22; docs/operate/alerts.md): a signed
webhook and an e-mail to a team's on-call address when a film is review first. Only the worker
that consumes ALERT_QUEUE sends them; the web and the inference workers only queue them."""

from django.core.exceptions import ImproperlyConfigured

from ._environment import env

# The address people reach the site at: links in alerts are absolute (an e-mail or a pager has
# no "current site"). No trailing slash.
SITE_URL = env("SITE_URL", default="http://localhost:8000").rstrip("/")

# --- The webhook ------------------------------------------------------------------------------
# POST of a small JSON document (no patient identifier) to this URL; "" leaves the channel off.
ALERT_WEBHOOK_URL = env("ALERT_WEBHOOK_URL", default="")
# The key of the body's HMAC-SHA256 (header X-Triage-Signature), shared with the receiver.
ALERT_WEBHOOK_SECRET = env("ALERT_WEBHOOK_SECRET", default="")
if ALERT_WEBHOOK_URL and not ALERT_WEBHOOK_SECRET:
    # An unsigned alert cannot be told from a forged one: refuse to start rather than send it.
    raise ImproperlyConfigured("ALERT_WEBHOOK_URL is set but ALERT_WEBHOOK_SECRET is not: set "
                               "ALERT_WEBHOOK_SECRET to the key the receiver verifies with")

# --- Delivery ---------------------------------------------------------------------------------
# The Celery queue of the alert tasks (consumed by the light delivery worker, dicom-sender in
# docker-compose.yml and deploy/kubernetes, and by scripts/run's worker).
ALERT_QUEUE = env("ALERT_QUEUE", default="alerts")
# Seconds to wait for the receiver (the webhook's HTTP server, the SMTP server).
ALERT_TIMEOUT_S = env.float("ALERT_TIMEOUT_S", default=10)
# While a receiver is down: retried this many times, waiting BACKOFF_S, then twice as long each
# time up to BACKOFF_MAX_S (defaults: about 15 minutes in all); then failed, for an admin to retry.
ALERT_MAX_RETRIES = env.int("ALERT_MAX_RETRIES", default=8)
ALERT_BACKOFF_S = env.float("ALERT_BACKOFF_S", default=5)
ALERT_BACKOFF_MAX_S = env.float("ALERT_BACKOFF_MAX_S", default=300)
# The reconciler makes the alerts of review-first films finished within this window whose
# scheduling message was lost (webapp.alerts.reconcile); older films are not alerted late.
ALERT_RECONCILE_WINDOW_S = env.int("ALERT_RECONCILE_WINDOW_S", default=6 * 3600)

# --- E-mail (Django's SMTP backend) -------------------------------------------------------------
# One URL, django-environ's format: smtp://user:password@host:25, smtp+tls://...:587 (STARTTLS),
# smtps://...:465 (TLS). The default is a mail server on this host.
_email = env.email_url("EMAIL_URL", default="smtp://localhost:25")
EMAIL_BACKEND = _email.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS", False))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL", False))
EMAIL_TIMEOUT = ALERT_TIMEOUT_S
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="pneumothorax-triage@localhost")
del _email
