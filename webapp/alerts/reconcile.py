"""The reconciler's share for alerts (run by ``manage.py reconcile_jobs`` with the jobs'): a
review-first film whose alerts were never made gets them.

complete_job queues the decision after its commit (``schedule_alerts_on_commit``); a worker that
dies between that commit and the message, or a broker that loses the message, would leave the
film without an alert, silently. The database is the truth: every round, the review-first films
finished in the last ``ALERT_RECONCILE_WINDOW_S`` (and long enough ago that the normal path had
its turn) are checked against the channels that would reach someone, and a missing alert is made
(``schedule_alerts`` makes each (film, channel) at most once, so this never alerts twice)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.alerts import services
from webapp.cases.models import Job, JobStatus

log = logging.getLogger(__name__)


def unscheduled_job_ids(older_than: timedelta, window: timedelta) -> list[int]:
    """Finished review-first jobs with a configured channel that has no alert yet."""
    now = timezone.now()
    candidates = (Job.objects.filter(status=JobStatus.DONE, review_first=True,
                                     finished_at__gte=now - window,
                                     finished_at__lt=now - older_than)
                  .select_related("image__case__team")
                  .prefetch_related("image__alerts")
                  .order_by("finished_at"))
    missing = []
    for job in candidates:
        made = {alert.channel for alert in job.image.alerts.all()}
        if set(services.configured_channels(job)) - made:
            missing.append(job.pk)
    return missing


def reconcile_alerts(older_than: timedelta | None = None,
                     window: timedelta | None = None) -> list[int]:
    """Make (and queue) the alerts the normal path missed; the ids of the alerts made."""
    if older_than is None:
        older_than = timedelta(seconds=settings.RECONCILE_QUEUED_AFTER_S)
    if window is None:
        window = timedelta(seconds=settings.ALERT_RECONCILE_WINDOW_S)
    made = []
    for job_id in unscheduled_job_ids(older_than, window):
        made += [alert.pk for alert in services.schedule_alerts(job_id)]
    if made:
        log.info("reconciler made %d missed alert(s): %s", len(made), ", ".join(map(str, made)))
    return made
