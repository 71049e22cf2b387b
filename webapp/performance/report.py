"""The figures as plain data, for the API (and the same numbers the model page shows)."""

from __future__ import annotations

from django.conf import settings

from .drift import judge, rule_text
from .models import DriftAlarm
from .services import HONESTY, site_figures


def performance_report(user) -> dict:
    admin = bool(getattr(user, "is_admin_role", False))
    alarms = {a.model_version: a for a in DriftAlarm.objects.all()}
    versions = []
    for entry in site_figures(user):
        alarm = alarms.get(entry.version)
        versions.append({
            "version": entry.version,
            **entry.overall.as_dict(),
            "dice_positive": entry.overall.dice,
            "held_out": {name: p.as_dict() for name, p in entry.held_out.items()},
            # The rule on these figures: the whole site's for an administrator; for a clinician,
            # their teams' films (the alarm itself is judged on the whole site: drift_alarm).
            "drift_check": judge(entry).as_dict(),
            "drift_alarm": None if alarm is None else {
                "fired_at": alarm.fired_at, "active": alarm.active},
            "months": [{"month": month, **figures.as_dict()}
                       for month, figures in entry.months.items()],
        })
    return {"scope": "site" if admin else "your films and your teams' films",
            "honesty": HONESTY, "drift_rule": rule_text(),
            "drift_minimum_positives": settings.DRIFT_MIN_POSITIVES, "versions": versions}
