"""Links from the audit page to cases and images (registered with webapp.audit.links when the
app is ready): only to what the reader may see now; a deleted case or image gets none."""

from __future__ import annotations

import uuid

from django.urls import reverse

from webapp.audit import links
from webapp.cases.models import CaseImage
from webapp.cases.services import access


def _uuids(ids: set[str]) -> list[uuid.UUID]:
    parsed = []
    for value in ids:
        try:
            parsed.append(uuid.UUID(value))
        except ValueError:
            continue  # not a case's or an image's id: no link
    return parsed


def case_links(user, ids: set[str]) -> dict[str, str]:
    found = access.visible_cases(user).filter(pk__in=_uuids(ids)).values_list("pk", flat=True)
    return {str(pk): reverse("cases:detail", args=[pk]) for pk in found}


def image_links(user, ids: set[str]) -> dict[str, str]:
    """An image's link is its section of its case's page."""
    found = CaseImage.objects.filter(pk__in=_uuids(ids), case__in=access.visible_cases(user))
    return {str(pk): f"{reverse('cases:detail', args=[case_id])}#image-{pk}"
            for pk, case_id in found.values_list("pk", "case_id")}


def register() -> None:
    links.register("case", case_links)
    links.register("caseimage", image_links)
