"""The hospital's systems: the DICOM door to the PACS (webapp.pacs) and the metrics Prometheus
scrapes (webapp.monitoring, workers.metrics)."""

from ._environment import env

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

# --- Metrics for Prometheus (webapp.monitoring, workers.metrics; docs/operate/metrics.md) ----
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
