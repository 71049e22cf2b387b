"""Failed-login throttling, counted from the audit log itself (the database is shared by every
web process, so gunicorn workers and hosts agree, and no new dependency is needed).

A user name is locked out *from one client address* after ``LOGIN_THROTTLE_FAILURES`` failed
logins within ``LOGIN_THROTTLE_WINDOW_S`` seconds; one address is locked out for every name
after ``LOGIN_THROTTLE_ADDRESS_FAILURES`` (password spraying). While locked, even the right
password is refused, and each refused attempt writes a ``login_locked`` audit row. The window
slides: the lockout ends once the failures age out of it.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action, AuditEvent

LOCKED_MESSAGE = ("Too many failed log-in attempts. For your protection this log-in is locked "
                  "for {minutes} minutes; try again later or ask an administrator.")


def _recent_failures(window_s: int):
    return AuditEvent.objects.filter(action=Action.LOGIN_FAILED,
                                     at__gte=timezone.now() - timedelta(seconds=window_s))


def is_locked(username: str | None, address: str | None) -> bool:
    window = settings.LOGIN_THROTTLE_WINDOW_S
    failures = _recent_failures(window)
    failures = failures.filter(client_address=address) if address else \
        failures.filter(client_address__isnull=True)
    if failures.count() >= settings.LOGIN_THROTTLE_ADDRESS_FAILURES:
        return True
    username = str(username or "")[:150]
    return failures.filter(detail__username=username).count() >= settings.LOGIN_THROTTLE_FAILURES


def locked_message() -> str:
    return LOCKED_MESSAGE.format(minutes=max(1, settings.LOGIN_THROTTLE_WINDOW_S // 60))


def check(request, username: str | None) -> bool:
    """True if this attempt must be refused; records the refusal in the audit log."""
    address = audit.client_address(request)
    if not is_locked(username, address):
        return False
    audit.record(None, Action.LOGIN_LOCKED, client_address=address,
                 detail={"username": str(username or "")[:150]})
    return True
