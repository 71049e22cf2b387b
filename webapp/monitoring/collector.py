"""What the web reports at each scrape, read from the sources of truth rather than counted in a
process: jobs and PACS deliveries per status (the database), and the messages waiting in each
Celery queue (the broker). Counting here, not in gunicorn processes, keeps the figures right
whichever web process answers the scrape and across restarts.

A source that is down does not fail the scrape: its series are left out and
``triage_metrics_source_up{source=...}`` says 0, so the other figures (and the alert) still come.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

BROKER_TIMEOUT_S = 2  # a scrape must answer within Prometheus's scrape_timeout (10 s default)


def queue_names() -> list[str]:
    """Every queue the product uses: those the Celery app declares, and the queues the settings
    send to (a site may name its own)."""
    from webapp.celery_app import app

    names = {queue.name for queue in app.conf.task_queues or ()}
    return sorted(names | {settings.INFERENCE_QUEUE, settings.DICOM_QUEUE})


def count_by_status(model, statuses) -> dict[str, int]:
    counts = dict.fromkeys(statuses, 0)  # every status, zeros included: the series never vanish
    for row in model.objects.order_by().values("status").annotate(n=Count("pk")):
        counts[row["status"]] = row["n"]
    return counts


def queue_lengths(names) -> dict[str, int]:
    """Messages waiting in each queue, through kombu: a declare answers the message count on
    Redis (LLEN, summed over kombu's priority lists) and on the filesystem broker (its files).
    Not declared passively: on Redis an empty queue has no key, and a passive declare of it
    fails. Messages a worker has taken (prefetched, or running under acks_late) are not counted."""
    from webapp.celery_app import app

    with app.connection_for_read(connect_timeout=BROKER_TIMEOUT_S) as connection:
        connection.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_S)
        channel = connection.default_channel
        return {name: channel.queue_declare(queue=name).message_count for name in names}


class TriageCollector(Collector):
    def collect(self):
        from webapp.cases.models import Job, JobStatus
        from webapp.pacs.models import Delivery, DeliveryStatus

        up = GaugeMetricFamily("triage_metrics_source_up",
                               "Whether this scrape could read the source (1) or not (0)",
                               labels=["source"])
        try:
            jobs = count_by_status(Job, JobStatus.values)
            deliveries = count_by_status(Delivery, DeliveryStatus.values)
        except DatabaseError as exc:
            log.warning("metrics: database unavailable (%s)", type(exc).__name__)
            up.add_metric(["database"], 0)
        else:
            up.add_metric(["database"], 1)
            yield gauge("triage_jobs", "Inference jobs in the database by status", "status", jobs)
            yield gauge("triage_pacs_deliveries", "Deliveries of results to PACS nodes by status",
                        "status", deliveries)
        try:
            lengths = queue_lengths(queue_names())
        except Exception as exc:  # kombu/redis raise many kinds; any of them means "unreadable"
            log.warning("metrics: broker unavailable (%s)", type(exc).__name__)
            up.add_metric(["broker"], 0)
        else:
            up.add_metric(["broker"], 1)
            yield gauge("triage_queue_length", "Messages waiting in the broker per Celery queue",
                        "queue", lengths)
        yield up


def gauge(name: str, documentation: str, label: str, values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([key], value)
    return family
