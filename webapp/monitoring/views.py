"""GET /metrics for Prometheus. Not behind the site's login (a scraper has no session): it
answers only a request with ``Authorization: Bearer <METRICS_TOKEN>``, and, where
METRICS_ALLOWED_NETWORKS is set, only from those addresses. No token configured: refused, so a
site that never set one exposes nothing. The figures are counts and timings, no patient data,
but they tell an outsider how busy the service is and how it is built."""

from __future__ import annotations

import hmac
import ipaddress
import os

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import transaction
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

from webapp.monitoring.collector import TriageCollector


def refusal(request) -> HttpResponse | None:
    token = settings.METRICS_TOKEN
    if not token:
        return HttpResponse("Metrics are off: METRICS_TOKEN is not set.\n", status=403,
                            content_type="text/plain")
    networks = settings.METRICS_ALLOWED_NETWORKS
    if networks and not _address_in(request.META.get("REMOTE_ADDR", ""), networks):
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        response = HttpResponse("A bearer token is required.\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        return HttpResponse("Forbidden.\n", status=403, content_type="text/plain")
    return None


def _address_in(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(network, strict=False) for network in networks)


def scrape_registry() -> CollectorRegistry:
    """This process's metrics, or, under gunicorn with PROMETHEUS_MULTIPROC_DIR, those of every
    web process (prometheus_client's multiprocess mode: one scrape reaches one process, the
    files hold them all); and the figures read from the database and the broker."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(REGISTRY)  # the default registry is itself a collector
    registry.register(TriageCollector())
    return registry


@login_not_required
@transaction.non_atomic_requests  # a database that is down must not hide the broker's figures
@require_GET
def metrics(request):
    refused = refusal(request)
    if refused is not None:
        return refused
    encoder, content_type = choose_encoder(request.headers.get("Accept", ""))
    response = HttpResponse(encoder(scrape_registry()), content_type=content_type)
    response["Cache-Control"] = "no-store"
    return response
