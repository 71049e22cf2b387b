"""Results back to the PACS: when every job of a case that came over DICOM has finished, one
Delivery per destination node is created and its id sent to the ``dicom`` queue; the task
(``workers.tasks.deliver_results``) calls ``deliver``.

States, each change guarded by the state it expects (as jobs are):
pending -> sending -> delivered | failed | pending (the PACS is down: retried with backoff);
nothing (no analysed DICOM image to send); failed -> pending only by an administrator's retry.
Idempotence: a claim takes a fresh run token and only its holder finishes the delivery, and the
instances sent carry stable UIDs (services.outbound), so a resend stores nothing twice."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import TERMINAL_STATUSES, Case, JobStatus
from webapp.pacs.models import Delivery, DeliveryStatus, InboundImage
from webapp.pacs.services.outbound import image_results
from webapp.pacs.services.sending import PacsRefused, PacsUnavailable, send_instances

log = logging.getLogger(__name__)

DELIVER_TASK = "workers.tasks.deliver_results"


def schedule_delivery(case_id) -> Delivery | None:
    """If ``case_id`` came over DICOM and all its jobs have finished, create its delivery (once)
    and send it to the queue after commit. Safe to call after every job and from the
    reconciler: the unique (case, node) row makes a second call a no-op."""
    inbound = (InboundImage.objects.filter(image__case_id=case_id)
               .select_related("node__results_node").first())
    if inbound is None:
        return None
    node = inbound.node.results_destination()
    if node is None:
        return None
    with transaction.atomic():
        case = Case.objects.select_for_update().filter(pk=case_id).first()
        if case is None or case.images.exclude(job__status__in=TERMINAL_STATUSES).exists():
            return None
        delivery, created = Delivery.objects.get_or_create(case=case, node=node)
        if created:
            _dispatch_on_commit(delivery.pk)
    return delivery


def schedule_delivery_for_job(job_id: int) -> Delivery | None:
    case_id = Case.objects.filter(images__job__pk=job_id).values_list("pk", flat=True).first()
    return schedule_delivery(case_id) if case_id is not None else None


def deliver(delivery_id: int) -> str:
    """Send a delivery's results. Returns 'delivered', 'nothing', 'failed' or 'skipped' (not
    ours to send: finished, or another run holds it); raises PacsUnavailable to be retried."""
    claimed = _claim(delivery_id)
    if claimed is None:
        return "skipped"
    delivery, token = claimed
    try:
        outbound = _results(delivery)
        if not outbound:
            _finish(delivery.pk, token, DeliveryStatus.NOTHING,
                    error="No image of this case was analysed: nothing to send.")
            return "nothing"
        outcomes = send_instances(delivery.node, [o.dataset for o in outbound])
    except PacsUnavailable as exc:
        _release(delivery.pk, token, str(exc))  # pending again: the task retries with backoff
        raise
    except PacsRefused as exc:
        _finish(delivery.pk, token, DeliveryStatus.FAILED, error=str(exc))
        return "failed"
    sent = [{"image": o.image_id, "kind": o.kind, "sop_instance_uid": o.sop_instance_uid,
             "status": f"0x{outcome.status:04X}"} for o, outcome in zip(outbound, outcomes)]
    _finish(delivery.pk, token, DeliveryStatus.DELIVERED, sent=sent)
    return "delivered"


def give_up(delivery_id: int, reason: str) -> bool:
    """pending -> failed after the last retry: visible on the case page, an admin may retry."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(
            pk=delivery_id, status=DeliveryStatus.PENDING).select_related("case").first()
        if delivery is None:
            return False
        delivery.status, delivery.error = DeliveryStatus.FAILED, reason[:2000]
        delivery.finished_at = timezone.now()
        delivery.save(update_fields=["status", "error", "finished_at"])
        audit.record(delivery.case.owner, Action.DELIVERY_FAILED, delivery.case, None,
                     detail={"node": str(delivery.node), "reason": reason[:500],
                             "attempts": delivery.attempts})
        return True


def retry_delivery(delivery_id: int, user, client_address: str | None = None) -> bool:
    """failed -> pending, by an administrator; sent to the queue after commit."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(
            pk=delivery_id, status=DeliveryStatus.FAILED).select_related("case", "node").first()
        if delivery is None:
            return False
        delivery.status, delivery.error, delivery.finished_at = DeliveryStatus.PENDING, "", None
        delivery.save(update_fields=["status", "error", "finished_at"])
        audit.record(user, Action.DELIVERY_RETRY, delivery.case, client_address,
                     detail={"node": str(delivery.node), "delivery": delivery.pk})
        _dispatch_on_commit(delivery.pk)
        return True


def stale_deliveries(older_than: timedelta) -> list[int]:
    """Deliveries the queue has probably lost: pending (or sending: its run died) and last
    sent longer ago than ``older_than``. The reconciler sends them again."""
    cutoff = timezone.now() - older_than
    return list(Delivery.objects.filter(status__in=(DeliveryStatus.PENDING, DeliveryStatus.SENDING),
                                        dispatched_at__lt=cutoff).values_list("pk", flat=True))


def undelivered_finished_cases(limit: int = 200) -> list:
    """Cases that came over DICOM, whose jobs have all finished, with no delivery yet (their
    last job's finisher did not get to schedule it, e.g. a worker died just then)."""
    return list(Case.objects.filter(images__inbound__isnull=False, deliveries__isnull=True)
                .exclude(images__job__status__in=(JobStatus.QUEUED, JobStatus.RUNNING))
                .distinct().values_list("pk", flat=True)[:limit])


def dispatch_delivery(delivery_id: int, countdown: float | None = None) -> None:
    from webapp.celery_app import app

    Delivery.objects.filter(pk=delivery_id).update(dispatched_at=timezone.now())
    app.send_task(DELIVER_TASK, kwargs={"delivery_pk": delivery_id}, queue=settings.DICOM_QUEUE,
                  countdown=countdown, retry=True,
                  retry_policy={"max_retries": 3, "interval_start": 0.2, "interval_step": 0.5})


def _dispatch_on_commit(delivery_id: int) -> None:
    def send_delivery():  # named: Django logs a robust callback's failure by __qualname__
        dispatch_delivery(delivery_id)

    transaction.on_commit(send_delivery, robust=True)


def _claim(delivery_id: int):
    """pending -> sending (or sending again: the run that held it died)."""
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(
            pk=delivery_id, status__in=(DeliveryStatus.PENDING, DeliveryStatus.SENDING)
        ).select_related("node", "case").first()
        if delivery is None:
            return None
        token = uuid.uuid4().hex
        delivery.status, delivery.run_token = DeliveryStatus.SENDING, token
        delivery.attempts += 1
        delivery.started_at = timezone.now()
        delivery.save(update_fields=["status", "run_token", "attempts", "started_at"])
        return delivery, token


def _results(delivery: Delivery):
    outbound = []
    inbound = (InboundImage.objects.filter(image__case=delivery.case,
                                           image__job__status=JobStatus.DONE)
               .select_related("image__job").order_by("image__position"))
    for row in inbound:
        outbound.extend(image_results(row.image, row.identity))
    return outbound


def _release(delivery_id: int, token: str, reason: str) -> None:
    with transaction.atomic():
        Delivery.objects.filter(pk=delivery_id, status=DeliveryStatus.SENDING,
                                run_token=token).update(status=DeliveryStatus.PENDING,
                                                        error=reason[:2000])


def _finish(delivery_id: int, token: str, status: str, error: str = "", sent=None) -> bool:
    with transaction.atomic():
        delivery = Delivery.objects.select_for_update().filter(
            pk=delivery_id, status=DeliveryStatus.SENDING, run_token=token
        ).select_related("case", "node").first()
        if delivery is None:
            return False
        delivery.status, delivery.error = status, error[:2000]
        delivery.sent = sent or []
        delivery.finished_at = timezone.now()
        delivery.save(update_fields=["status", "error", "sent", "finished_at"])
        if status == DeliveryStatus.DELIVERED:
            # The original identity was kept only to file the results: it goes now.
            InboundImage.objects.filter(image__case=delivery.case).update(identity={})
            audit.record(delivery.case.owner, Action.RESULTS_SENT, delivery.case, None,
                         detail={"node": str(delivery.node), "instances": sent})
        elif status == DeliveryStatus.FAILED:
            audit.record(delivery.case.owner, Action.DELIVERY_FAILED, delivery.case, None,
                         detail={"node": str(delivery.node), "reason": error[:500]})
        return True
