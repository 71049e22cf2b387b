"""Batches: who sees which, which a case may join, and how far a batch has got.

Access is in the queryset, as for cases (``webapp.cases.services.access``): a stranger's batch
is not found (404), and a case can be added only to a batch of one's own (administrators see
every batch, but add to none but theirs). Batches stay with their owner when cases are shared
with a team: a batch is one client's run of submissions (its progress, its idempotency), while
its cases are visible to the uploader's teammates like any other case."""

from __future__ import annotations

from django.db.models import Count, Q

from webapp.api.models import Batch, BatchCase
from webapp.cases.models import Case, Job, JobStatus


def visible_batches(user):
    batches = Batch.objects.select_related("owner")
    if getattr(user, "is_admin_role", False):
        return batches
    return batches.filter(owner=user)


def owned_batch(user, batch_id) -> Batch | None:
    return Batch.objects.filter(pk=batch_id, owner=user).first()


def add_case(batch: Batch, case: Case) -> BatchCase:
    return BatchCase.objects.create(batch=batch, case=case)


def progress(batch: Batch) -> dict:
    """Counts of the batch's images by job status. Complete once every expected case has been
    submitted and every image has finished (done or failed); an empty batch that expects
    nothing is complete, one that expects an unknown number is not."""
    counts = Job.objects.filter(image__case__api_batch_link__batch=batch).aggregate(
        images=Count("pk"),
        queued=Count("pk", filter=Q(status=JobStatus.QUEUED)),
        running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
        done=Count("pk", filter=Q(status=JobStatus.DONE)),
        failed=Count("pk", filter=Q(status=JobStatus.FAILED)),
        positive=Count("pk", filter=Q(status=JobStatus.DONE, positive=True)),
    )
    expected = batch.expected_cases
    cases = batch.links.count()
    finished = counts["done"] + counts["failed"]
    complete = finished == counts["images"] and (expected is None or cases >= expected) \
        and (cases > 0 or expected == 0)
    return {"cases": cases, **counts,
            "fraction_finished": round(finished / counts["images"], 4) if counts["images"] else 0.0,
            "complete": complete}
