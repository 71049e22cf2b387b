"""The audit page links a drift alarm's row to the model page, at the version it names (the
alarm's figures are there, with the rule). Anyone who sees the row may open that page."""

from __future__ import annotations

from django.urls import reverse

from webapp.audit import links


def alarm_links(user, ids: set[str]) -> dict[str, str]:
    from .models import DriftAlarm

    numbers = [int(i) for i in ids if i.isdigit() and len(i) <= 18]
    found = DriftAlarm.objects.filter(pk__in=numbers).values_list("pk", "model_version")
    return {str(pk): f"{reverse('cases:model_versions')}#{version}" for pk, version in found}


def register() -> None:
    links.register("driftalarm", alarm_links)
