"""Logins, logouts and failed logins go to the audit log, inside the request's transaction; a
changed password revokes the user's API tokens."""

from django.contrib.auth import BACKEND_SESSION_KEY
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from webapp.audit import services as audit
from webapp.audit.models import Action

from . import directory, services
from .models import password_changed_signal


@receiver(user_logged_in)
def _logged_in(sender, request, user, **kwargs):
    # How the user signed in ("password", "ldap", "oidc"): the backend that let them in, which
    # authenticate() puts on the user and login() keeps in the session.
    session = getattr(request, "session", None)
    backend = getattr(user, "backend", None) or (session and session.get(BACKEND_SESSION_KEY))
    method = directory.sign_in_method(backend)
    audit.record(user, Action.LOGIN, client_address=audit.client_address(request),
                 detail={"method": method})


@receiver(user_logged_out)
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        audit.record(user, Action.LOGOUT, client_address=audit.client_address(request))


@receiver(user_login_failed)
def _login_failed(sender, credentials, request=None, **kwargs):
    if getattr(request, "login_refused", False):  # the log-in limits refused it (login_limits):
        return  # a login_locked row already; not a failed password, which was never checked
    # Never the password: only the name that was tried.
    audit.record(None, Action.LOGIN_FAILED, client_address=audit.client_address(request),
                 detail={"username": str(credentials.get("username", ""))[:150]})


@receiver(password_changed_signal)
def _password_changed(sender, user, **kwargs):
    services.revoke_all_tokens(user, reason="password_changed")
