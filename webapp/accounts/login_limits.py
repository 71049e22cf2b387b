"""Failed log-ins: django-axes counts them and locks a name out; this module adds the one limit
axes has no setting for, and what the user is told.

- **Per name + address (axes).** After ``AXES_FAILURE_LIMIT`` failed log-ins for one user name
  from one client address (``AXES_LOCKOUT_PARAMETERS``), that name is locked out *from that
  address*: even the right password is refused, until ``AXES_COOLOFF_TIME`` has passed since its
  latest failure. Another address is not locked. The client address is the audit log's
  (``AXES_CLIENT_IP_CALLABLE``: X-Forwarded-For only where AUDIT_TRUST_X_FORWARDED_FOR says so).
- **Per address (here, on axes' records).** An address with ``LOGIN_THROTTLE_ADDRESS_FAILURES``
  failures within the same window (password spraying over many names) is *slowed down*, never
  locked out: each attempt from it must come a while after its latest failure, 1 s doubling per
  further failure up to ``LOGIN_THROTTLE_ADDRESS_MAX_WAIT_S``.

  Why not axes' own parameters: axes can only lock out. An ``"ip_address"`` lockout parameter
  (even with a higher, callable ``AXES_FAILURE_LIMIT``) would lock every user out for the whole
  cool-off wherever they share one address, as they all do behind a proxy whose
  X-Forwarded-For is not trusted: 50 failures anywhere, and nobody could sign in (issue 5's
  denial of service). A callable ``AXES_COOLOFF_TIME`` is one duration for every parameter, so it
  cannot give the address a short, doubling wait while names keep their window. So the wait is
  read here from axes' ``AccessAttempt`` rows (the same counter and window, nothing stored
  beside it; ``manage.py axes_reset_ip`` clears it too). A user with the right password from a
  noisy address gets in after at most that wait; a sprayer gets one guess per wait.

A refused attempt is not a failure (``AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False``,
and ``request.axes_locked_out``): it neither lengthens the lock nor the wait. Each one writes a
``login_locked`` audit row (``wait_s`` for the address's): the audit log is the record, axes'
tables are the counter.
"""

from __future__ import annotations

import math

from axes.helpers import get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import UNUSABLE_PASSWORD_PREFIX
from django.db.models import Max, Sum
from django.shortcuts import render
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action

LOCKED_MESSAGE = ("Too many failed log-in attempts. For your protection this log-in is locked "
                  "for {minutes} minutes; try again later or ask an administrator.")
LOCKED_UNTIL_RESET_MESSAGE = ("Too many failed log-in attempts. For your protection this log-in "
                              "is locked; ask an administrator.")
WAIT_MESSAGE = ("Too many failed log-in attempts from your network. Wait {wait}, then try "
                "again.")


def failure_is_a_directory_outage(request, credentials) -> bool:
    """``AXES_WHITELIST_CALLABLE``: a sign-in that failed because the directory could not be
    reached (``request.directory_unreachable``, set by webapp.accounts.ldap_backend during this
    very attempt) is not a wrong password. Counted, it would lock directory users out during an
    outage, and for the window after it. A name that is also a local account (a password of its
    own, checked before the directory) still counts: the outage must not give guesses at the
    first admin's password for free."""
    if not getattr(request, "directory_unreachable", False):
        return False
    username = str((credentials or {}).get("username") or "")
    local_accounts = get_user_model()._default_manager.filter(
        **{get_user_model().USERNAME_FIELD: username}).exclude(
        password__startswith=UNUSABLE_PASSWORD_PREFIX)
    return not local_accounts.exists()


def locked_message(request=None) -> str:
    cool_off = get_cool_off(request)
    if cool_off is None:  # no cool-off configured: only an administrator unlocks (axes_reset)
        return LOCKED_UNTIL_RESET_MESSAGE
    return LOCKED_MESSAGE.format(minutes=max(1, int(cool_off.total_seconds()) // 60))


def address_wait_s(request, address: str | None) -> int:
    """Seconds an attempt from this address must still wait (0: none). Over the address limit
    the wait since the latest failure is 1 s, then doubles per further failure, capped."""
    attempts = AccessAttempt.objects.filter(ip_address=address)  # None: the unknown address
    cool_off = get_cool_off(request)
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    found = attempts.aggregate(count=Sum("failures_since_start"), latest=Max("attempt_time"))
    over = (found["count"] or 0) - settings.LOGIN_THROTTLE_ADDRESS_FAILURES
    if over < 0 or found["latest"] is None:  # (None: a limit of 0 and no failure yet)
        return 0
    wait = min(settings.LOGIN_THROTTLE_ADDRESS_MAX_WAIT_S, 2 ** min(over, 30))
    elapsed = (timezone.now() - found["latest"]).total_seconds()
    return max(0, math.ceil(wait - elapsed))


def refuse(request, username: str | None, message: str, **detail) -> None:
    """Record the refusal and mark the request: not a failure (accounts.signals, axes), and the
    reason for the page (``refusal_message``)."""
    audit.record(None, Action.LOGIN_LOCKED, client_address=audit.client_address(request),
                 detail={"username": str(username or "")[:150], **detail})
    request.login_refused = True
    request.login_refusal = message
    request.axes_locked_out = True


def refusal_message(request) -> str | None:
    """Why this request's log-in failed, when the limits are the reason: refused before its
    password was checked, or this failure just reached the name's limit (axes flags both)."""
    if request is None:
        return None
    if getattr(request, "login_refusal", None):
        return request.login_refusal
    if getattr(request, "axes_locked_out", False):
        return locked_message(request)
    return None


def lockout_response(request, original_response=None, credentials=None):
    """``AXES_LOCKOUT_CALLABLE``: axes' answer to a locked-out (or slowed-down) attempt. Our
    log-in page already says why (ThrottledAuthenticationForm), so it is kept as the view made
    it; any other way in (the admin's log-in) gets our page with the reason instead of "enter a
    correct user name", with axes' status code (AXES_HTTP_RESPONSE_CODE, 429)."""
    if getattr(request, "login_limits_shown", False) and original_response is not None:
        return original_response
    return render(request, "accounts/login_refused.html",
                  {"message": refusal_message(request) or locked_message(request)},
                  status=settings.AXES_HTTP_RESPONSE_CODE)
