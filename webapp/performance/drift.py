"""The drift alarm. The rule, as the model page states it (RULE):

    For a model version, the alarm fires when, over at least DRIFT_MIN_POSITIVES films that the
    reviews confirm have a pneumothorax, the upper bound of the site's 95% Wilson interval of
    sensitivity falls below the lower bound of the held-out sensitivity's 95% Wilson interval
    (the model card's test half, ``ModelVersion.test_figures``).

Both intervals must clear each other: the site's films then miss pneumothoraces more often than
the model card allows, beyond what chance explains at these numbers. Sensitivity only, on
purpose: reviewed negatives are mostly films the model flagged (clinicians review what worries
them), so the site's specificity is biased low by the sampling itself and an alarm on it would
fire without any drift; and a fall in sensitivity is the one that misses patients. The page
shows specificity beside the held-out figure for a person to judge.

Whole site, whoever saved the review: drift is the model's, not a team's. Checked after each
review that gives a true label commits (signals.py): one query per check, cheap beside a review.
The first time it fires for a version it writes a DriftAlarm, an audit row (Action.DRIFT_ALARM),
and queues the alert channels that are configured; never again for that version."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction

from webapp.audit import services as audit
from webapp.audit.models import Action

from .models import DriftAlarm
from .proportions import Proportion

log = logging.getLogger(__name__)

RULE = ("The alarm fires for a model version when, over at least {minimum} films that reviews "
        "confirm have a pneumothorax, the upper bound of this site's 95% interval of sensitivity "
        "falls below the lower bound of the held-out sensitivity's 95% interval (the model "
        "card's test images): the site's films then miss pneumothoraces more often than the "
        "model card allows, beyond what chance explains.")

DELIVER_TASK = "webapp.performance.tasks.deliver_drift_alarm"


def rule_text() -> str:
    return RULE.format(minimum=settings.DRIFT_MIN_POSITIVES)


@dataclass(frozen=True)
class DriftCheck:
    version: str
    local: Proportion
    held_out: Proportion | None
    minimum: int

    @property
    def enough(self) -> bool:
        return self.local.total >= self.minimum

    @property
    def fires(self) -> bool:
        return (self.enough and self.held_out is not None and self.held_out.total > 0
                and self.local.high < self.held_out.low)

    @property
    def status(self) -> str:
        if self.held_out is None:
            return "no held-out figures"
        if not self.enough:
            return f"not enough confirmed positives ({self.local.total} of {self.minimum})"
        return "fires" if self.fires else "silent"

    def as_dict(self) -> dict:
        return {"figure": "sensitivity", "status": self.status, "fires": self.fires,
                "minimum_positives": self.minimum, "local": self.local.as_dict(),
                "held_out": self.held_out.as_dict() if self.held_out else None}


def judge(version_figures) -> DriftCheck:
    """The rule applied to one version's figures (services.VersionFigures)."""
    return DriftCheck(version_figures.version, version_figures.overall.sensitivity,
                      version_figures.held_out.get("sensitivity"), settings.DRIFT_MIN_POSITIVES)


def check_drift(version: str) -> DriftCheck:
    """Apply the rule to ``version`` on the whole site; record and alert the first firing."""
    from .services import sensitivity_and_held_out

    local, held_out = sensitivity_and_held_out(version)
    check = DriftCheck(version, local, held_out, settings.DRIFT_MIN_POSITIVES)
    alarm = DriftAlarm.objects.filter(model_version=version).first()
    if alarm is not None:
        if alarm.active != check.fires:  # the banner follows the rule; the record stays
            alarm.active = check.fires
            alarm.save(update_fields=["active", "checked_at"])
        return check
    if check.fires:
        _fire(check)
    return check


def _fire(check: DriftCheck) -> None:
    try:
        with transaction.atomic():
            alarm = DriftAlarm.objects.create(model_version=check.version, detail=check.as_dict())
            audit.record(None, Action.DRIFT_ALARM, alarm,
                         detail={"model_version": check.version, **check.as_dict()})
    except IntegrityError:  # another review's check fired it at the same moment: once only
        return
    log.warning("drift alarm for model %s: sensitivity %.3f (upper %.3f) over %d positives, "
                "held-out lower bound %.3f", check.version, check.local.value, check.local.high,
                check.local.total, check.held_out.low)
    for channel in configured_channels():
        _dispatch_on_commit(alarm.pk, channel)


def configured_channels() -> list[str]:
    channels = []
    if settings.ALERT_WEBHOOK_URL:
        channels.append("webhook")
    if settings.DRIFT_ALERT_EMAILS:
        channels.append("email")
    return channels


def _dispatch_on_commit(alarm_id: int, channel: str) -> None:
    def send_drift_alarm():  # named: Django logs a robust callback's failure by __qualname__
        from webapp.celery_app import app

        app.send_task(DELIVER_TASK, kwargs={"alarm_pk": alarm_id, "channel": channel},
                      queue=settings.ALERT_QUEUE, retry=True,
                      retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})

    transaction.on_commit(send_drift_alarm, robust=True)


def active_alarms():
    return DriftAlarm.objects.filter(active=True)
