"""Failed-login throttling, counted from the audit log itself (the database is shared by every
web process, so gunicorn workers and hosts agree, and no new dependency is needed).

Two limits, within ``LOGIN_THROTTLE_WINDOW_S`` seconds (a sliding window):

- Per name: a user name is locked out *from one client address* after
  ``LOGIN_THROTTLE_FAILURES`` failed log-ins (password guessing). While locked, even the right
  password is refused; the lockout ends once the failures age out of the window.
- Per address: an address with ``LOGIN_THROTTLE_ADDRESS_FAILURES`` failures (password
  spraying over many names) is *slowed down*, not locked out: each attempt from it must come a
  while after its latest failure, a wait that doubles with each further failure up to
  ``LOGIN_THROTTLE_ADDRESS_MAX_WAIT_S``. A lockout by address was a denial of service: behind a
  proxy whose X-Forwarded-For is not trusted (AUDIT_TRUST_X_FORWARDED_FOR) every user shares
  one address, and 50 failures anywhere locked everyone out. Now a user with the right password
  from a noisy address gets in after at most that wait, while a sprayer gets one guess per wait.
  Attempts refused for waiting do not count as failures, so they do not lengthen the wait.

Each refused attempt writes a ``login_locked`` audit row (with ``wait_s`` for the address's).
"""

from __future__ import annotations

import math
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action, AuditEvent

LOCKED_MESSAGE = ("Too many failed log-in attempts. For your protection this log-in is locked "
                  "for {minutes} minutes; try again later or ask an administrator.")
WAIT_MESSAGE = ("Too many failed log-in attempts from your network. Wait {wait}, then try "
                "again.")


def _recent_failures(address: str | None):
    failures = AuditEvent.objects.filter(
        action=Action.LOGIN_FAILED,
        at__gte=timezone.now() - timedelta(seconds=settings.LOGIN_THROTTLE_WINDOW_S))
    return failures.filter(client_address=address) if address else \
        failures.filter(client_address__isnull=True)


def is_locked(username: str | None, address: str | None) -> bool:
    """The per-name limit: this name has failed too often from this address."""
    username = str(username or "")[:150]
    return _recent_failures(address).filter(detail__username=username).count() \
        >= settings.LOGIN_THROTTLE_FAILURES


def address_wait_s(address: str | None) -> int:
    """Seconds an attempt from this address must still wait (0: none). Over the address limit
    the wait since the latest failure is 1 s, then doubles per further failure, capped."""
    found = _recent_failures(address).aggregate(count=Count("pk"), latest=Max("at"))
    over = found["count"] - settings.LOGIN_THROTTLE_ADDRESS_FAILURES
    if over < 0 or found["latest"] is None:  # (None: a limit of 0 and no failure yet)
        return 0
    wait = min(settings.LOGIN_THROTTLE_ADDRESS_MAX_WAIT_S, 2 ** min(over, 30))
    elapsed = (timezone.now() - found["latest"]).total_seconds()
    return max(0, math.ceil(wait - elapsed))


def locked_message() -> str:
    return LOCKED_MESSAGE.format(minutes=max(1, settings.LOGIN_THROTTLE_WINDOW_S // 60))


def refusal(request, username: str | None) -> str | None:
    """Why this attempt is refused before its password is checked (None: check it); a refusal
    is recorded in the audit log."""
    address = audit.client_address(request)
    detail = {"username": str(username or "")[:150]}
    if is_locked(username, address):
        message = locked_message()
    elif wait := address_wait_s(address):
        message = WAIT_MESSAGE.format(wait=f"{wait} second{'' if wait == 1 else 's'}")
        detail["wait_s"] = wait
    else:
        return None
    audit.record(None, Action.LOGIN_LOCKED, client_address=address, detail=detail)
    request.login_refused = True  # not also a failure (accounts.signals)
    return message
