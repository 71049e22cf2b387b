"""The order of the case list. A triage tool exists to put the cases most likely to show a
pneumothorax in front of the clinician first; "newest" is the plain history."""

from __future__ import annotations

from django.db.models import Count, F, Max, Q, QuerySet

NEWEST = "newest"
SUSPICION = "suspicion"
ORDERINGS = {NEWEST: "Newest first", SUSPICION: "Most suspicious first"}


def parse_ordering(value: str | None) -> str:
    """An unknown or missing value falls back to the history order rather than failing."""
    return value if value in ORDERINGS else NEWEST


def order_cases(cases: QuerySet, ordering: str) -> QuerySet:
    """``suspicion``: cases with an image called positive first, then by the highest image
    probability, then the ones still waiting for a result, each group newest first. A case whose
    jobs have not finished has no probability yet and goes after every analysed case, so a
    suspected pneumothorax is never pushed down by a pending upload."""
    if ordering != SUSPICION:
        return cases.order_by("-created_at", "pk")
    return cases.annotate(
        suspected_images=Count("images", filter=Q(images__job__positive=True)),
        highest_probability=Max("images__job__probability"),
    ).order_by(F("suspected_images").desc(), F("highest_probability").desc(nulls_last=True),
               "-created_at", "pk")
