"""The admin's "retry" action for the things this product sends and may give up on (alerts,
DICOM deliveries): the failed ones among the selected are sent again, each through its own
service (which guards the transition and writes the audit row), and the administrator is told
how many went and how many were left as they were (not failed)."""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages

from webapp.audit.services import client_address


def retry_failed(model_admin, request, queryset, failed_status: str,
                 retry_one: Callable[..., bool], plural: str) -> None:
    """``retry_one(pk, user, client_address) -> bool`` for each selected row in
    ``failed_status``; a message naming how many ``plural`` were sent again."""
    retried = sum(retry_one(pk, request.user, client_address(request))
                  for pk in queryset.filter(status=failed_status).values_list("pk", flat=True))
    skipped = queryset.count() - retried
    model_admin.message_user(request, f"{retried} {plural} sent again"
                             + (f"; {skipped} not failed, left as they are" if skipped else "."),
                             messages.SUCCESS if retried else messages.WARNING)
