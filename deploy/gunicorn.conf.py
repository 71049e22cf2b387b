"""gunicorn settings: `gunicorn webapp.wsgi -c deploy/gunicorn.conf.py`. Environment overrides:
GUNICORN_BIND, WEB_CONCURRENCY, GUNICORN_TIMEOUT, FORWARDED_ALLOW_IPS."""

import multiprocessing
import tempfile
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# Views are I/O bound except the upload check (decoding an image, ~0.1 s): sync workers with
# threads are enough; the heavy work runs in Celery.
workers = int(os.environ.get("WEB_CONCURRENCY", min(4, multiprocessing.cpu_count())))
threads = int(os.environ.get("GUNICORN_THREADS", 4))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 60))  # a 50 MB upload on a slow link
graceful_timeout = 30
max_requests = 2000  # recycle workers now and then: bounded memory over months
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# Trust X-Forwarded-* only from the reverse proxy in front of us.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Prometheus: a scrape reaches one worker; prometheus_client's multiprocess mode (a folder the
# workers write their counters to, read by the /metrics view) makes it count all of them. A
# fresh folder per start unless the operator names one, since stale files would count twice.
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="triage-web-metrics-")
