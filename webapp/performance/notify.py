"""The drift alarm on the alert channels of webapp.alerts: the same signed webhook (an
``event: "drift"`` body) and the same SMTP sending, to DRIFT_ALERT_EMAILS. No film, case or
patient is named: the version, the figures and a link to the model page, which asks for a
sign-in."""

from __future__ import annotations

import json

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.urls import reverse

from webapp.alerts.services import DeliveryError, post_signed, send_message

from .models import DriftAlarm

EVENT = "drift"


def payload(alarm: DriftAlarm) -> dict:
    from .drift import rule_text

    return {"event": EVENT, "alarm_id": alarm.pk, "model_version": alarm.model_version,
            "figure": alarm.detail.get("figure", "sensitivity"),
            "local": alarm.detail.get("local"), "held_out": alarm.detail.get("held_out"),
            "rule": rule_text(),
            "model_page_url": f"{settings.SITE_URL}{reverse('cases:model_versions')}",
            "fired_at": alarm.fired_at.isoformat()}


def body_bytes(alarm: DriftAlarm) -> bytes:
    return json.dumps(payload(alarm), separators=(",", ":"), sort_keys=True).encode()


def email_message(alarm: DriftAlarm, connection=None) -> EmailMessage:
    data = payload(alarm)
    local, held = data["local"] or {}, data["held_out"] or {}
    body = "\n".join([
        f"Drift alarm: model {alarm.model_version} finds fewer pneumothoraces on this site's "
        "reviewed films than on its held-out test images.",
        "",
        f"This site: sensitivity {local.get('value', 0):.3f} (95% interval {local.get('low', 0):.3f}"
        f" to {local.get('high', 0):.3f}) over {local.get('films')} confirmed positives.",
        f"Held out: sensitivity {held.get('value', 0):.3f} (95% interval {held.get('low', 0):.3f}"
        f" to {held.get('high', 0):.3f}) over {held.get('films')} positives.",
        "",
        data["rule"],
        "",
        f"The model page (sign-in required): {data['model_page_url']}",
        "",
        "Reviews are not a random sample: clinicians review the films that worry them.",
    ])
    return EmailMessage(subject=f"Drift alarm: model {alarm.model_version}", body=body,
                        to=list(settings.DRIFT_ALERT_EMAILS), connection=connection,
                        headers={"Message-ID": f"<triage-drift-{alarm.pk}@pneumothorax-triage>"})


def deliver(alarm_id: int, channel: str) -> str:
    """Send the alarm on ``channel`` once: 'delivered', 'failed' (refused for good) or 'skipped'
    (already sent, or being sent); raises DeliveryError when the receiver is down, for the task
    to retry. The row lock is held while sending, as webapp.alerts.services.deliver does."""
    with transaction.atomic():
        alarm = (DriftAlarm.objects.select_for_update(skip_locked=True)
                 .filter(pk=alarm_id).first())
        if alarm is None or alarm.deliveries.get(channel) == "delivered":
            return "skipped"
        try:
            if channel == "webhook":
                post_signed(body_bytes(alarm), f"drift-{alarm.pk}", f"triage-drift-{alarm.pk}")
            elif channel == "email":
                if not settings.DRIFT_ALERT_EMAILS:
                    raise DeliveryError("DRIFT_ALERT_EMAILS is not set on the alert worker.",
                                        permanent=True)
                send_message(lambda connection: email_message(alarm, connection),
                             "the drift alarm's addresses")
            else:
                raise DeliveryError(f"Unknown channel {channel!r}.", permanent=True)
        except DeliveryError as exc:
            if not exc.permanent:
                raise
            alarm.deliveries[channel] = f"failed: {exc}"[:500]
            alarm.save(update_fields=["deliveries"])
            return "failed"
        alarm.deliveries[channel] = "delivered"
        alarm.save(update_fields=["deliveries"])
        return "delivered"


def give_up(alarm_id: int, channel: str, reason: str) -> None:
    with transaction.atomic():
        alarm = DriftAlarm.objects.select_for_update().filter(pk=alarm_id).first()
        if alarm is not None and alarm.deliveries.get(channel) != "delivered":
            alarm.deliveries[channel] = f"failed: {reason}"[:500]
            alarm.save(update_fields=["deliveries"])
