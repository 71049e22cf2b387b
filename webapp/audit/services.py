"""Writing and reading the audit log. Call ``record`` inside the transaction of the action
(every request is atomic: ATOMIC_REQUESTS), so that the action and its row commit together."""

from __future__ import annotations

import ipaddress

from django.conf import settings

from .models import AuditEvent


def client_address(request) -> str | None:
    if request is None:
        return None
    address = request.META.get("REMOTE_ADDR", "")
    if settings.AUDIT_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded:
            # The last entry is the one our own proxy added; earlier ones are client-supplied.
            address = forwarded.split(",")[-1].strip()
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def record(user, action: str, obj=None, client_address: str | None = None,
           detail: dict | None = None) -> AuditEvent:
    user = user if getattr(user, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        user=user,
        username=user.get_username() if user else "",
        action=action,
        object_type=obj._meta.model_name if obj is not None else "",
        object_id=str(obj.pk) if obj is not None else "",
        client_address=client_address,
        detail=detail or {},
    )


def visible_events(user):
    """A user's own trail; administrators see everyone's."""
    events = AuditEvent.objects.select_related("user")
    if getattr(user, "is_admin_role", False):
        return events
    return events.filter(user=user)
