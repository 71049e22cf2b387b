"""The reconciler: the database is the source of truth for jobs, the broker only carries ids.

A job id can be lost with the broker (Redis restarted or emptied, a message dropped) or with a
worker (SIGKILL of the whole worker: Redis gives its unacknowledged message back only after the
visibility timeout, an hour; kombu's filesystem transport never gives it back). Two remedies:

- a worker that starts sends again at once the jobs still *running* under its own name: it has
  just started, so no run of its own is alive, and those are orphans of its previous life
  (``resend_orphaned_jobs``, called by ``workers.startup``);
- for a node that never comes back, the reconciler. Run periodically (``python manage.py reconcile_jobs --every 60``, or the
``reconcile`` service in docker-compose / systemd), it sends again:

- jobs still *queued* whose last dispatch is older than ``RECONCILE_QUEUED_AFTER_S``;
- jobs still *running* whose run started longer ago than the hard time limit plus
  ``RECONCILE_RUNNING_GRACE_S``: that run cannot be alive any more.

Sending again is safe: a run must claim the job (guarded transition), a finished job is never
run again, and a job lost ``INFERENCE_MAX_ATTEMPTS`` times is failed with its reason.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from webapp.cases.models import Job, JobStatus
from webapp.cases.services.jobs import dispatch_job

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    resent_queued: list[int] = field(default_factory=list)
    resent_running: list[int] = field(default_factory=list)
    send_failed: list[int] = field(default_factory=list)

    @property
    def resent(self) -> int:
        return len(self.resent_queued) + len(self.resent_running)


def resend_orphaned_jobs(worker: str) -> list[int]:
    """Send again the jobs marked running under ``worker`` (a Celery node name). Call it only
    from that worker's start-up, before it runs anything: then none of those runs can be alive.
    Each delivery still has to claim its job, so a late duplicate from the broker is harmless."""
    if not worker:
        return []
    now = timezone.now()
    with transaction.atomic():
        orphans = list(Job.objects.select_for_update(skip_locked=True)
                       .filter(status=JobStatus.RUNNING, worker=worker[:200])
                       .order_by("started_at").values_list("pk", flat=True))
        Job.objects.filter(pk__in=orphans).update(dispatched_at=now)
    for job_id in orphans:
        try:
            dispatch_job(job_id)
        except Exception:  # broker down: the reconciler sends it once the run is presumed dead
            log.warning("could not resend orphaned job %s at start-up", job_id)
    if orphans:
        log.info("worker %s resent %d job(s) its previous run left running: %s",
                 worker, len(orphans), ", ".join(map(str, orphans)))
    return orphans


def reconcile_jobs(queued_after: timedelta | None = None, running_after: timedelta | None = None,
                   limit: int = 500) -> ReconcileReport:
    """Send again what the queue has probably lost. Ids only are logged (no PHI)."""
    if queued_after is None:
        queued_after = timedelta(seconds=settings.RECONCILE_QUEUED_AFTER_S)
    if running_after is None:
        running_after = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT
                                  + settings.RECONCILE_RUNNING_GRACE_S)
    now = timezone.now()
    report = ReconcileReport()
    with transaction.atomic():
        # skip_locked: two reconcilers (or a worker claiming the job right now) never wait on
        # each other, and a job is marked as sent by one of them only.
        queued = list(Job.objects.select_for_update(skip_locked=True)
                      .filter(status=JobStatus.QUEUED, dispatched_at__lt=now - queued_after)
                      .order_by("queued_at").values_list("pk", flat=True)[:limit])
        running = list(Job.objects.select_for_update(skip_locked=True)
                       .filter(status=JobStatus.RUNNING, started_at__lt=now - running_after,
                               dispatched_at__lt=now - running_after)
                       .order_by("started_at").values_list("pk", flat=True)[:limit])
        Job.objects.filter(pk__in=queued + running).update(dispatched_at=now)
    for ids, resent in ((queued, report.resent_queued), (running, report.resent_running)):
        for job_id in ids:
            try:
                dispatch_job(job_id)
            except Exception:  # broker still down: the next round tries again
                log.warning("reconciler could not send job %s; will retry", job_id)
                Job.objects.filter(pk=job_id).update(dispatched_at=now - queued_after)
                report.send_failed.append(job_id)
            else:
                resent.append(job_id)
    if report.resent or report.send_failed:
        log.info("reconciler resent %d queued and %d running jobs (%d could not be sent)",
                 len(report.resent_queued), len(report.resent_running), len(report.send_failed))
    return report
