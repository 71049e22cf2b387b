"""How fast alerts reach a person, for administrators: per alert, upload -> delivery
(``CaseImage.created_at`` -> ``Alert.delivered_at``) and delivery -> acknowledgement
(``Alert.delivered_at`` -> ``Acknowledgement.at``), and their median and 90th percentile over the
last 30 days, per channel.

The percentiles are computed in Python over the window's rows, not in SQL: PostgreSQL has
``percentile_cont`` but SQLite (the embedded default) has none, and one query returning a month
of alerts (a few thousand rows at a busy site: two per review-first film at most) is cheap.

A film acknowledged before its alert arrived (the clinician saw it on the worklist first) counts
as 0 s from delivery to acknowledgement: the alert did not wait for anyone."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.exceptions import ObjectDoesNotExist
from django.utils import timezone

from .models import Acknowledgement, Alert, AlertStatus, Channel

WINDOW_DAYS = 30


@dataclass(frozen=True)
class Figures:
    n: int
    median_s: float | None
    p90_s: float | None


def percentile(values: list[float], fraction: float) -> float | None:
    """Linear interpolation between the closest ranks (numpy's default, and
    ``statistics.quantiles(method="inclusive")``): the 90th percentile of 1..10 is 9.1. None for
    no values; the value itself for one."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(values: list[float]) -> Figures:
    return Figures(len(values), percentile(values, 0.5), percentile(values, 0.9))


def acknowledgement_of(image) -> Acknowledgement | None:
    try:
        return image.acknowledgement
    except ObjectDoesNotExist:  # a reverse one-to-one with no row raises, even when selected
        return None


def upload_to_delivery_s(alert: Alert) -> float | None:
    if alert.delivered_at is None:
        return None
    return (alert.delivered_at - alert.image.created_at).total_seconds()


def delivery_to_acknowledgement_s(alert: Alert) -> float | None:
    acknowledgement = acknowledgement_of(alert.image)
    if alert.delivered_at is None or acknowledgement is None:
        return None
    return max(0.0, (acknowledgement.at - alert.delivered_at).total_seconds())


def with_timings(alerts):
    """``alerts`` with what the two durations read, in the same query."""
    return alerts.select_related("image", "image__acknowledgement__by")


def summary(now: datetime | None = None, days: int = WINDOW_DAYS) -> dict:
    """The window's alerts (made in the last ``days``), per channel and for each film's first
    delivered alert whatever its channel: counts by status, and the figures of both durations."""
    since = (now or timezone.now()) - timedelta(days=days)
    alerts = list(with_timings(Alert.objects.filter(created_at__gte=since)))
    rows = [_row(label, [a for a in alerts if a.channel == channel])
            for channel, label in Channel.choices]
    rows.append(_first_of_each_film(alerts))
    return {"since": since, "days": days, "rows": rows, "total": len(alerts)}


def _row(label: str, alerts: list[Alert]) -> dict:
    delivered = [a for a in alerts if a.delivered_at is not None]
    acknowledged = [d for d in map(delivery_to_acknowledgement_s, delivered) if d is not None]
    return {
        "label": label,
        "alerts": len(alerts),
        "delivered": len(delivered),
        "pending": sum(a.status == AlertStatus.PENDING for a in alerts),
        "failed": sum(a.status == AlertStatus.FAILED for a in alerts),
        "unacknowledged": len(delivered) - len(acknowledged),
        "upload_to_delivery": figures([upload_to_delivery_s(a) for a in delivered]),
        "delivery_to_acknowledgement": figures(acknowledged),
    }


def _first_of_each_film(alerts: list[Alert]) -> dict:
    """The alert that reached someone first, per film: what the clinician waited for."""
    first: dict = {}
    for alert in alerts:
        if alert.delivered_at is None:
            continue
        known = first.get(alert.image_id)
        if known is None or alert.delivered_at < known.delivered_at:
            first[alert.image_id] = alert
    films = {a.image_id for a in alerts}
    row = _row("Any channel (first delivery of each film)", list(first.values()))
    row.update(alerts=len(films), pending=None, failed=None)  # per film, not per alert
    return row


def format_seconds(seconds: float | None) -> str:
    """4.2 s, 3 min 12 s, 2 h 05 min: what an administrator reads at a glance."""
    if seconds is None:
        return "–"
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(seconds) // 60, 60)
    return f"{hours} h {rest:02d} min"
