"""The retention policy: cases uploaded more than ``RETENTION_DAYS`` ago are deleted, case by
case, through ``deletion.delete_case_by_system`` (films, previews, masks, overlays, DICOM results,
jobs and reviews), each with its ``RETENTION_DELETE`` audit row and its tombstone
(``DeletedCase``) in the case's own transaction. The audit rows of the case stay. Unset
``RETENTION_DAYS``: nothing is ever deleted.

Kept although old:
- a case with work in flight: a job queued or running, a PACS delivery waiting or being sent
  (deleting it would pull the files from under the worker, or lose a result owed to a PACS);
  always, whatever the settings;
- a case awaiting review (``webapp.reviews.services.filter_reviewed``: an image that has or will
  have a result and that nobody has reviewed), while ``RETENTION_KEEP_UNREVIEWED`` (default):
  a clinician must not lose a film they have not read. It goes at the first run after its
  review.

Who runs it: the reconciler (``manage.py reconcile_jobs --every 60``), every
``RETENTION_EVERY_S``, at most ``RETENTION_MAX_PER_ROUND`` cases a round; or an administrator,
``manage.py apply_retention [--dry-run]``. Two at once are harmless: each case is locked
(skip_locked) and checked again under the lock before it goes. Reports and logs carry case ids
and counts only, never a patient identifier."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.core import checks
from django.db import transaction
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from webapp.audit.models import Action
from webapp.cases.models import Case, CaseImage, Job, JobStatus
from webapp.cases.services.deletion import delete_case_by_system
from webapp.pacs.models import Delivery, DeliveryStatus
from webapp.reviews.services import filter_reviewed

log = logging.getLogger(__name__)

IN_FLIGHT_JOBS = (JobStatus.QUEUED, JobStatus.RUNNING)
IN_FLIGHT_DELIVERIES = (DeliveryStatus.PENDING, DeliveryStatus.SENDING)


class RetentionMisconfigured(Exception):
    """RETENTION_DAYS is not a whole number of days, 1 or more; ``str()`` says so in one line."""


@dataclass
class RetentionReport:
    days: int | None
    cutoff: datetime | None = None
    dry_run: bool = False
    deleted: list[str] = field(default_factory=list)  # case ids (deleted, or would be)
    images: int = 0  # images of those cases
    kept_in_flight: list[str] = field(default_factory=list)
    kept_unreviewed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # an error; tried again next run
    more: bool = False  # the limit was reached: more cases are due


def retention_days() -> int | None:
    """RETENTION_DAYS, checked: None (keep everything) or a whole number of days >= 1."""
    days = settings.RETENTION_DAYS
    if days is None:
        return None
    if isinstance(days, bool) or not isinstance(days, int) or days < 1:
        raise RetentionMisconfigured(
            f"RETENTION_DAYS must be a whole number of days, 1 or more (it is {days!r}); "
            "unset it to keep every case.")
    return days


@checks.register(checks.Tags.compatibility)
def check_retention_settings(app_configs=None, **kwargs):
    """A mistyped RETENTION_DAYS stops ``manage.py check`` (and migrate, runserver and the
    reconciler) with its reason, rather than deleting by a policy nobody asked for."""
    try:
        retention_days()
    except RetentionMisconfigured as exc:
        return [checks.Error(str(exc), id="cases.E001")]
    return []


def reason(days: int) -> str:
    return f"retention: older than {days} days"


def _in_flight() -> Q:
    """Cases with work still going on: never deleted."""
    jobs = Job.objects.filter(image__case=OuterRef("pk"), status__in=IN_FLIGHT_JOBS)
    deliveries = Delivery.objects.filter(case=OuterRef("pk"), status__in=IN_FLIGHT_DELIVERIES)
    return Q(Exists(jobs)) | Q(Exists(deliveries))


def expired_cases(cutoff: datetime) -> QuerySet:
    return Case.objects.filter(created_at__lt=cutoff)


def _sorted_ids(cases: QuerySet, limit: int | None = None) -> list[str]:
    ids = cases.order_by("created_at", "pk").values_list("pk", flat=True)
    return [str(pk) for pk in (ids[:limit] if limit is not None else ids)]


def deletable_cases(cutoff: datetime) -> QuerySet:
    """Old cases that may go now: nothing in flight, and reviewed where the setting asks."""
    cases = expired_cases(cutoff).exclude(_in_flight())
    if settings.RETENTION_KEEP_UNREVIEWED:
        cases = cases.exclude(pk__in=filter_reviewed(expired_cases(cutoff), False).values("pk"))
    return cases


def apply_retention(*, dry_run: bool = False, limit: int | None = None) -> RetentionReport:
    """Delete (or, ``dry_run``, only list) the cases due under the policy, oldest first, at most
    ``limit`` of them. Raises RetentionMisconfigured for a bad RETENTION_DAYS."""
    days = retention_days()
    report = RetentionReport(days=days, dry_run=dry_run)
    if days is None:
        return report
    report.cutoff = timezone.now() - timedelta(days=days)
    old = expired_cases(report.cutoff)
    in_flight = old.filter(_in_flight())
    report.kept_in_flight = _sorted_ids(in_flight)
    if settings.RETENTION_KEEP_UNREVIEWED:
        report.kept_unreviewed = _sorted_ids(filter_reviewed(old.exclude(pk__in=in_flight), False))
    due = _sorted_ids(deletable_cases(report.cutoff), None if limit is None else limit + 1)
    if limit is not None and len(due) > limit:
        due, report.more = due[:limit], True
    if dry_run:
        report.deleted = due
        report.images = CaseImage.objects.filter(case_id__in=due).count()
        return report
    for case_id in due:
        try:
            tombstone = delete_expired_case(case_id, report.cutoff, days)
        except Exception:  # one case's failure must not stop the others; ids only in the log
            log.exception("retention could not delete case %s; next run tries again", case_id)
            report.failed.append(case_id)
            continue
        if tombstone is not None:
            report.deleted.append(case_id)
            report.images += tombstone.images
    if report.deleted:
        log.info("retention deleted %d case(s) older than %d days: %s", len(report.deleted), days,
                 ", ".join(report.deleted))
    return report


def delete_expired_case(case_id, cutoff: datetime, days: int):
    """Delete one case if it is still due, in one transaction with its audit row and tombstone;
    returns the tombstone, or None when the case is gone, held by another run, or no longer
    due (a job was re-run, an image awaits review since the list was made)."""
    with transaction.atomic():
        case = (Case.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("owner", "team")
                .filter(pk=case_id, created_at__lt=cutoff).first())
        if case is None:
            return None
        # Lock its jobs: a re-run or a review (which locks the job first) waits for us, or we
        # see what it did. Then check again, under the locks, that the case may go.
        list(Job.objects.select_for_update(of=("self",)).filter(image__case=case))
        if not deletable_cases(cutoff).filter(pk=case.pk).exists():
            return None
        return delete_case_by_system(case, Action.RETENTION_DELETE, reason(days))


def scheduled_round() -> tuple[RetentionReport | None, float]:
    """One round of the reconciler's: its report (None while the policy is off) and the seconds
    until the next round: RETENTION_EVERY_S, or none when this round's limit left cases due
    (they go in the reconciler's next round, a minute later, not an hour)."""
    if settings.RETENTION_DAYS is None:
        return None, settings.RETENTION_EVERY_S
    report = apply_retention(limit=settings.RETENTION_MAX_PER_ROUND)
    return report, 0.0 if report.more else settings.RETENTION_EVERY_S
