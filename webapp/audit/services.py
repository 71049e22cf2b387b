"""Writing and reading the audit log. Call ``record`` inside the transaction of the action
(every request is atomic: ATOMIC_REQUESTS), so that the action and its row commit together."""

from __future__ import annotations

import ipaddress
import time

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


# --- one row per access of a page --------------------------------------------------------------
# A case page shows its images: the browser then fetches each one's preview and, once there is
# a result, its mask and overlay. Those fetches are part of the page's access, which its one row
# names (with the images it showed); a row per fetch buried each access under two or three more.
# The session remembers the page views it recorded, so a fetch that no page of this session
# accounts for (another session, a script, an hour later) still writes its own row.
PAGE_VIEW_COVERS_S = 3600
_SESSION_KEY = "audit_page_views"
_REMEMBERED = 100  # per session, most recent first kept; an old one's fetches get their own rows


def record_page_view(request, action: str, obj, detail: dict | None = None) -> AuditEvent:
    """The row of a page showing ``obj``'s data; its images' fetches (``covered_by_page_view``)
    write none for the next PAGE_VIEW_COVERS_S in this session."""
    event = record(request.user, action, obj, client_address(request), detail)
    views = dict(request.session.get(_SESSION_KEY, {}))
    views[str(obj.pk)] = event.at.timestamp()
    request.session[_SESSION_KEY] = dict(sorted(views.items(), key=lambda item: item[1])[-_REMEMBERED:])
    return event


def covered_by_page_view(request, object_id) -> bool:
    """Whether this session recorded a page view of ``object_id`` within PAGE_VIEW_COVERS_S."""
    session = getattr(request, "session", None)
    seen = session.get(_SESSION_KEY, {}).get(str(object_id)) if session is not None else None
    return isinstance(seen, (int, float)) and 0 <= time.time() - seen < PAGE_VIEW_COVERS_S
