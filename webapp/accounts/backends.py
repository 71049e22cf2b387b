from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from webapp.accounts import throttle


class ThrottledModelBackend(ModelBackend):
    """Every other way in (the admin's log-in form, the API's password log-ins) goes through
    authenticate(): a locked-out name/address, or an address that must still wait, is refused
    there too, password unchecked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None:
            refused = throttle.refusal(request, username)
            if refused is not None:
                raise PermissionDenied(refused)
        return super().authenticate(request, username=username, password=password, **kwargs)
