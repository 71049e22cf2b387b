"""The case list as a triage worklist: which cases, in which order.

A triage tool exists to put the cases most likely to show a pneumothorax in front of the
clinician first. Three orders:

- ``urgency`` (the worklist page's default): cases still waiting for a result on top, with
  their state, so that nothing just sent is out of sight; then the urgent ones (an image called
  positive, or flagged "review first" by the high-sensitivity threshold); then cases whose
  analysis failed (nobody has a result for them: a clinician must read them unaided); then the
  rest. Within each group, a film larger than the patient's prior film first (only urgent ones
  have one), then the highest image probability, then the largest outlined area, then the newest.
- ``suspicion``: positive first, then by probability, waiting cases last (the API's ranking of
  finished work).
- ``newest``: the plain history (the API's default).

Filters (``filter_cases``) are shared by the page and the API; status and result use the SQL
form of ``webapp.cases.services.status``, so they agree with the status the payloads show.
"""

from __future__ import annotations

from datetime import datetime
from datetime import timezone as dt_timezone

from django.db import models as db
from django.db.models import Count, F, Max, Prefetch, Q, QuerySet, Value, When

from webapp.cases.models import CaseImage, JobStatus
from webapp.cases.services import comparison, display, status

NEWEST = "newest"
SUSPICION = "suspicion"
URGENCY = "urgency"
ORDERINGS = {URGENCY: "Most urgent first", SUSPICION: "Most suspicious first", NEWEST: "Newest first"}

WAITING = (JobStatus.QUEUED, JobStatus.RUNNING)


def parse_ordering(value: str | None, default: str = NEWEST) -> str:
    """An unknown or missing value falls back to the default rather than failing."""
    return value if value in ORDERINGS else default


def order_cases(cases: QuerySet, ordering: str) -> QuerySet:
    if ordering == URGENCY:
        return _by_urgency(cases)
    if ordering == SUSPICION:
        # A case whose jobs have not finished has no probability yet and goes after every
        # analysed case, so a suspected pneumothorax is never pushed down by a pending upload.
        return cases.annotate(
            suspected_images=Count("images", filter=Q(images__job__positive=True)),
            highest_probability=Max("images__job__probability"),
        ).order_by(F("suspected_images").desc(), F("highest_probability").desc(nulls_last=True),
                   "-created_at", "pk")
    return cases.order_by("-created_at", "pk")


def _by_urgency(cases: QuerySet) -> QuerySet:
    cases = cases.annotate(
        waiting_images=Count("images", filter=Q(images__job__status__in=WAITING)),
        urgent_images=Count("images", filter=Q(images__job__status=JobStatus.DONE)
                            & (Q(images__job__positive=True) | Q(images__job__review_first=True))),
        failed_images=Count("images", filter=Q(images__job__status=JobStatus.FAILED)),
        # Larger than the patient's prior film (services.comparison): first among the urgent,
        # since an enlarging pneumothorax is the one that can become a tension pneumothorax.
        larger_images=Count("images", filter=Q(images__job__status=JobStatus.DONE,
                                               images__job__comparison__trend="larger")),
        highest_probability=Max("images__job__probability"),
        largest_area=Max("images__job__area_fraction"),
    ).annotate(urgency_group=db.Case(
        When(waiting_images__gt=0, then=Value(0)),
        When(urgent_images__gt=0, then=Value(1)),
        When(failed_images__gt=0, then=Value(2)),
        default=Value(3), output_field=db.IntegerField()))
    return cases.order_by("urgency_group", F("larger_images").desc(),
                          F("highest_probability").desc(nulls_last=True),
                          F("largest_area").desc(nulls_last=True), "-created_at", "pk")


def filter_cases(cases: QuerySet, params: dict) -> QuerySet:
    """``params`` validated by the caller (the API's ``CaseFilterSerializer``, the page's
    ``WorklistFilterForm``); keys that are absent or empty filter nothing."""
    if params.get("batch"):
        cases = cases.filter(api_batch_link__batch_id=params["batch"])
    if params.get("client_reference"):
        cases = cases.filter(client_reference=params["client_reference"])
    if params.get("created_after"):
        cases = cases.filter(created_at__gte=_in_utc(params["created_after"]))
    if params.get("created_before"):
        cases = cases.filter(created_at__lt=_in_utc(params["created_before"]))
    if params.get("q"):
        # The reference a client gave, or an image's file name: what a clinician remembers.
        text = params["q"]
        cases = cases.filter(Q(client_reference__icontains=text)
                             | Q(images__original_name__icontains=text)).distinct()
    if params.get("review_first"):
        cases = cases.filter(images__job__review_first=True).distinct()
    wanted, positive = params.get("status"), params.get("positive")
    if wanted or positive is not None:  # only then: the counts cost a join and a GROUP BY
        cases = status.with_status(cases)
        if wanted:
            cases = status.filter_status(cases, wanted)
        if positive is not None:
            cases = status.filter_positive(cases, positive)
    return cases


def _in_utc(moment: datetime) -> datetime:
    """A date bound in UTC, as the database compares it. A bound on year 1's first or year
    9999's last day in a zone off UTC lies beyond what a datetime holds once in UTC: it is
    clamped to the earliest or latest datetime, which selects exactly the same cases (none was
    created beyond them), rather than overflowing into a 500."""
    try:
        return moment.astimezone(dt_timezone.utc)
    except OverflowError:
        return (datetime.max if moment.year == datetime.max.year else datetime.min).replace(
            tzinfo=dt_timezone.utc)


def with_images(cases: QuerySet) -> QuerySet:
    """Images and their jobs for a whole page of cases in two queries, not two per case."""
    return cases.select_related("owner").prefetch_related(
        Prefetch("images", queryset=CaseImage.objects.select_related("job")))


def worklist_row(case) -> dict:
    """What the worklist shows of one case, for the page and its JSON alike."""
    summary = status.case_status(case)
    done = [image for image in summary["images"] if image["status"] == JobStatus.DONE]
    top = max(done, key=lambda image: image["probability"] or 0, default=None)
    findings = (top or {}).get("findings") or {}
    return {
        "id": str(case.pk),
        "created_at": case.created_at,
        "owner": case.owner.get_username(),
        "reference": case.client_reference,
        "study": dict(display.study_header(case.study_metadata)),
        "images": len(summary["images"]),
        "status": summary["status"],
        "positive": summary["positive"],
        "max_probability": summary["max_probability"],
        "review_first": any(image["review_first"] for image in done),
        # Why, where the film alone would not say it: larger than the patient's prior film.
        "review_reason": comparison.LARGER_REASON if any(
            (image.get("comparison") or {}).get("trend") == comparison.LARGER for image in done) else "",
        "findings": findings.get("in_words", "") if summary["positive"] else "",
        "large": findings.get("large") if summary["positive"] else None,
    }
