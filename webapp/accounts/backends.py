from axes.backends import AxesStandaloneBackend
from axes.exceptions import AxesBackendPermissionDenied

from webapp.accounts import login_limits
from webapp.audit import services as audit


class LoginLimitsBackend(AxesStandaloneBackend):
    """First in AUTHENTICATION_BACKENDS, so that every way in that checks a password (our log-in
    page, the admin's, a directory account) is refused here, password unchecked, while the name
    is locked out from this address (axes) or the address must still wait (login_limits). It
    never signs anyone in: the backends after it do."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if password is None:
            # Not a password sign-in (OpenID Connect's callback: the provider checked the
            # credential and throttles its own form); the limits here are for guessed passwords.
            return None
        if request is None:
            # authenticate() called by code for no client (Django's test Client.login, a
            # shell): there is no address to count against, and axes would raise instead.
            return None
        try:
            super().authenticate(request, username=username, password=password, **kwargs)
        except AxesBackendPermissionDenied:
            login_limits.refuse(request, username, login_limits.locked_message(request))
            raise
        if wait := login_limits.address_wait_s(request, audit.client_address(request)):
            message = login_limits.WAIT_MESSAGE.format(
                wait=f"{wait} second{'' if wait == 1 else 's'}")
            login_limits.refuse(request, username, message, wait_s=wait)
            raise AxesBackendPermissionDenied("the client address must still wait")
        return None
