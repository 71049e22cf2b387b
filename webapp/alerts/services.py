"""Alerts that reach a person: when a film's job finishes review first, one Alert per configured
channel (the webhook, the team's on-call e-mail) is made and sent from the ``alerts`` queue.

Exactly once per film and channel, by construction:
- ``schedule_alerts`` runs after the job's result is committed, as many times as the job is
  completed or the message delivered; the unique (image, channel) row makes every call after the
  first a no-op (get_or_create), so a redelivered job never alerts twice.
- ``deliver`` sends while holding the alert's row lock and marks it delivered in the same
  transaction; a second delivery of the same task finds it delivered (or locked) and sends
  nothing. A worker killed after the receiver got the alert but before the commit sends it again
  on redelivery: that copy carries the same ``X-Triage-Delivery`` id (and e-mail Message-ID), so
  the receiver keeps one. That is the receiver's "exactly once".

States: pending -> delivered | failed (permanent refusal, or the last retry); failed -> pending
only by an administrator's retry. Nothing here names the patient: the payload has the film's
and alert's ids, the reason, the probability and a link to the case page, which asks for a
sign-in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import smtplib

import requests
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from webapp.alerts.models import Alert, AlertStatus, Channel
from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Job, JobStatus

log = logging.getLogger(__name__)

SCHEDULE_TASK = "webapp.alerts.tasks.schedule_alerts"
DELIVER_TASK = "webapp.alerts.tasks.deliver_alert"
EVENT = "review_first"
SIGNATURE_HEADER = "X-Triage-Signature"
DELIVERY_HEADER = "X-Triage-Delivery"  # the alert's id: the same on every attempt, to de-duplicate
# HTTP answers that mean "not now": the receiver or a proxy in front of it is down or busy.
TRANSIENT_HTTP = frozenset({408, 429})


class Reason:
    LARGER = "larger"  # larger than on the patient's prior film (Job.comparison)
    POSITIVE = "positive"
    ABOVE_REVIEW_THRESHOLD = "above_review_threshold"  # negative call, probability high enough


class DeliveryError(Exception):
    """A delivery that did not reach the receiver; ``permanent``: trying again cannot help."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


# --- Deciding -----------------------------------------------------------------------------------
def alert_reason(job: Job) -> str | None:
    """Why this finished job is review first, or None when it is not. "larger" first: an
    enlarging pneumothorax is the most urgent thing the film can say."""
    if job.status != JobStatus.DONE or not job.review_first:
        return None
    if (job.comparison or {}).get("trend") == "larger":
        return Reason.LARGER
    if job.positive:
        return Reason.POSITIVE
    return Reason.ABOVE_REVIEW_THRESHOLD


def configured_channels(job: Job) -> list[str]:
    """The channels that reach someone for this film: the webhook where ALERT_WEBHOOK_URL is
    set, e-mail where the case's team has an on-call address."""
    channels = []
    if settings.ALERT_WEBHOOK_URL:
        channels.append(Channel.WEBHOOK)
    team = job.image.case.team
    if team is not None and team.on_call_email:
        channels.append(Channel.EMAIL)
    return channels


def schedule_alerts(job_id: int) -> list[Alert]:
    """Make the alerts of a finished review-first job (once per channel) and queue them after
    commit. Safe to call again and again: returns the alerts made by this call only."""
    job = (Job.objects.select_related("image__case__team").filter(pk=job_id).first())
    if job is None:
        return []
    reason = alert_reason(job)
    if reason is None:
        return []
    made = []
    with transaction.atomic():
        for channel in configured_channels(job):
            alert, created = Alert.objects.get_or_create(image=job.image, channel=channel,
                                                         defaults={"reason": reason})
            if created:
                made.append(alert)
                _dispatch_on_commit(alert.pk)
    return made


def schedule_alerts_on_commit(job_id: int) -> None:
    """complete_job's hook: once the result is committed, queue the decision by job id. The
    task reads the committed job, so the order of complete_job's edits does not matter.
    robust: a broker outage must not undo a stored result."""
    def send_schedule_alerts():  # named: Django logs a robust callback's failure by __qualname__
        from webapp.celery_app import app

        app.send_task(SCHEDULE_TASK, kwargs={"job_pk": job_id}, queue=settings.ALERT_QUEUE,
                      retry=True,
                      retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})

    transaction.on_commit(send_schedule_alerts, robust=True)


# --- Sending ------------------------------------------------------------------------------------
def deliver(alert_id: int) -> str:
    """Send one alert. Returns 'delivered', 'failed' (refused for good) or 'skipped' (not
    pending, or another run is sending it now); raises DeliveryError when the receiver is down,
    for the task to try again later (the alert stays pending, its attempt and error kept)."""
    transient = None
    with transaction.atomic():
        # Held while sending: a duplicate of this task (redelivered) skips instead of sending a
        # second copy at the same time; a worker killed mid-send releases it with its connection.
        alert = (Alert.objects.select_for_update(skip_locked=True, of=("self",))
                 .filter(pk=alert_id, status=AlertStatus.PENDING)
                 .select_related("image__case__team", "image__job").first())
        if alert is None:
            return "skipped"
        alert.attempts += 1
        try:
            send(alert)
        except DeliveryError as exc:
            if exc.permanent:
                _fail(alert, str(exc))
                return "failed"
            alert.last_error = str(exc)[:2000]
            alert.save(update_fields=["attempts", "last_error"])
            transient = exc
        else:
            alert.status, alert.delivered_at, alert.last_error = (AlertStatus.DELIVERED,
                                                                  timezone.now(), "")
            alert.save(update_fields=["status", "attempts", "delivered_at", "last_error"])
            audit.record(alert.image.case.owner, Action.ALERT_SENT, alert, None,
                         detail=_audit_detail(alert))
            return "delivered"
    raise transient  # outside the block: the attempt and its error are committed


def send(alert: Alert) -> None:
    if alert.channel == Channel.WEBHOOK:
        send_webhook(alert)
    elif alert.channel == Channel.EMAIL:
        send_email(alert)
    else:
        raise DeliveryError(f"Unknown channel {alert.channel!r}.", permanent=True)


def payload(alert: Alert) -> dict:
    """What both channels say. Ids, the reason, the probability and a link: no patient
    identifier, name, birth date, patient reference or file name."""
    image, job = alert.image, alert.image.job
    case_path = reverse("cases:detail", kwargs={"case_id": image.case_id})
    return {
        "event": EVENT,
        "alert_id": alert.pk,
        "case_url": f"{settings.SITE_URL}{case_path}",
        "image_id": str(image.pk),
        "reason": alert.reason,
        "probability": None if job.probability is None else round(float(job.probability), 4),
        "created_at": alert.created_at.isoformat(),
    }


def body_bytes(alert: Alert) -> bytes:
    return json.dumps(payload(alert), separators=(",", ":"), sort_keys=True).encode()


def signature(body: bytes, secret: str) -> str:
    """The header's value: HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(alert: Alert) -> None:
    post_signed(body_bytes(alert), str(alert.pk), f"triage-alert-{alert.pk}")


def post_signed(body: bytes, delivery_id: str, idempotency_key: str) -> None:
    """POST ``body`` (JSON) signed to ALERT_WEBHOOK_URL; raises DeliveryError. Shared by the
    per-film alerts and the site-level events (webapp.performance's drift alarm)."""
    url = settings.ALERT_WEBHOOK_URL
    if not url:
        raise DeliveryError("ALERT_WEBHOOK_URL is not set on the alert worker.", permanent=True)
    headers = {"Content-Type": "application/json",
               SIGNATURE_HEADER: signature(body, settings.ALERT_WEBHOOK_SECRET),
               DELIVERY_HEADER: delivery_id, "Idempotency-Key": idempotency_key,
               "User-Agent": "pneumothorax-triage-alerts"}
    try:
        # No redirects: a signed alert goes where it was configured to, nowhere else.
        response = requests.post(url, data=body, headers=headers, timeout=settings.ALERT_TIMEOUT_S,
                                 allow_redirects=False)
    except requests.Timeout:
        raise DeliveryError(f"The webhook did not answer within {settings.ALERT_TIMEOUT_S:g} s.")
    except requests.RequestException as exc:
        raise DeliveryError(f"The webhook could not be reached: {type(exc).__name__}.")
    status = response.status_code
    if 200 <= status < 300:
        return
    answer = f"The webhook answered HTTP {status} {response.reason or ''}".rstrip() + "."
    if status >= 500 or status in TRANSIENT_HTTP:
        raise DeliveryError(answer)
    raise DeliveryError(answer + " Not retried: the receiver refused this alert.", permanent=True)


def email_message(alert: Alert, connection=None) -> EmailMessage:
    data = payload(alert)
    reason = {Reason.LARGER: "larger than on the prior film", Reason.POSITIVE: "pneumothorax found",
              Reason.ABOVE_REVIEW_THRESHOLD: "above the review threshold"}.get(alert.reason,
                                                                                alert.reason)
    body = "\n".join([
        "A chest X-ray needs review first.",
        "",
        f"Reason: {reason}",
        f"Probability: {data['probability']}",
        f"Open the case (sign-in required): {data['case_url']}",
        "",
        f"Image: {data['image_id']}",
        f"Alert: {data['alert_id']} at {data['created_at']}",
        "",
        "Sent by Pneumothorax Triage, a decision aid: the film must still be read.",
    ])
    # A stable Message-ID: a copy sent again after a worker died is the same message to mail
    # clients and archives.
    return EmailMessage(subject=f"Review first: chest X-ray ({reason})", body=body,
                        to=[alert.image.case.team.on_call_email], connection=connection,
                        headers={DELIVERY_HEADER: str(alert.pk),
                                 "Message-ID": f"<triage-alert-{alert.pk}@pneumothorax-triage>"})


def send_email(alert: Alert) -> None:
    team = alert.image.case.team
    if team is None or not team.on_call_email:
        raise DeliveryError("The case's team has no on-call e-mail address any more.",
                            permanent=True)
    send_message(lambda connection: email_message(alert, connection), "the on-call address")


def send_message(make_message, recipients: str) -> None:
    """Send the EmailMessage ``make_message(connection)`` builds; raises DeliveryError. Shared by
    the per-film alerts and the site-level events (webapp.performance's drift alarm)."""
    try:
        connection = get_connection(timeout=settings.ALERT_TIMEOUT_S)
        make_message(connection).send()
    except smtplib.SMTPRecipientsRefused as exc:
        codes = [code for code, _ in exc.recipients.values()]
        permanent = all(code >= 500 for code in codes)
        raise DeliveryError(f"The mail server refused {recipients} (SMTP {codes}).",
                            permanent=permanent)
    except smtplib.SMTPResponseException as exc:
        raise DeliveryError(f"The mail server answered SMTP {exc.smtp_code}.",
                            permanent=exc.smtp_code >= 500)
    except (smtplib.SMTPException, OSError) as exc:  # refused, unreachable, timed out, dropped
        raise DeliveryError(f"The mail server {settings.EMAIL_HOST}:{settings.EMAIL_PORT} could "
                            f"not be reached: {type(exc).__name__}.")


# --- Giving up, retrying --------------------------------------------------------------------------
def give_up(alert_id: int, reason: str) -> bool:
    """pending -> failed after the last retry: listed as failed for admins, with the reason."""
    with transaction.atomic():
        alert = (Alert.objects.select_for_update(of=("self",))
                 .filter(pk=alert_id, status=AlertStatus.PENDING)
                 .select_related("image__case").first())
        if alert is None:
            return False
        _fail(alert, reason)
        return True


def retry_alert(alert_id: int, user, client_address: str | None = None) -> bool:
    """failed -> pending, by an administrator; sent to the queue after commit."""
    with transaction.atomic():
        alert = (Alert.objects.select_for_update(of=("self",))
                 .filter(pk=alert_id, status=AlertStatus.FAILED).first())
        if alert is None:
            return False
        alert.status = AlertStatus.PENDING
        alert.save(update_fields=["status"])  # last_error stays until a delivery succeeds
        audit.record(user, Action.ALERT_RETRY, alert, client_address, detail=_audit_detail(alert))
        _dispatch_on_commit(alert.pk)
        return True


def resend_pending_alerts(limit: int = 500) -> list[int]:
    """Send again every pending alert: called when an alert worker starts. A worker killed
    mid-delivery leaves its message unacknowledged, and Redis hands it back only after its
    visibility timeout (an hour); an alert must not wait that long. A copy of a task that is
    still alive elsewhere is harmless: deliver() sends under the row lock, pending only."""
    pending = list(Alert.objects.filter(status=AlertStatus.PENDING).order_by("created_at")
                   .values_list("pk", flat=True)[:limit])
    for alert_id in pending:
        dispatch_alert(alert_id)
    if pending:
        log.info("resent %d pending alert(s): %s", len(pending), ", ".join(map(str, pending)))
    return pending


def dispatch_alert(alert_id: int, countdown: float | None = None) -> None:
    from webapp.celery_app import app

    app.send_task(DELIVER_TASK, kwargs={"alert_pk": alert_id}, queue=settings.ALERT_QUEUE,
                  countdown=countdown, retry=True,
                  retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})


def _dispatch_on_commit(alert_id: int) -> None:
    def send_alert():  # named: Django logs a robust callback's failure by __qualname__
        dispatch_alert(alert_id)

    transaction.on_commit(send_alert, robust=True)


def _fail(alert: Alert, reason: str) -> None:
    alert.status, alert.last_error = AlertStatus.FAILED, reason[:2000]
    alert.save(update_fields=["status", "attempts", "last_error"])
    audit.record(alert.image.case.owner, Action.ALERT_FAILED, alert, None,
                 detail={**_audit_detail(alert), "error": reason[:500]})
    log.warning("alert %s (%s) failed: %s", alert.pk, alert.channel, reason)


def _audit_detail(alert: Alert) -> dict:
    # Ids and the channel only: no address, no patient data.
    return {"channel": alert.channel, "reason": alert.reason, "image": str(alert.image_id),
            "attempts": alert.attempts}
