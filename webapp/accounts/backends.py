from django.contrib.auth.backends import ModelBackend
from django.core.exceptions import PermissionDenied

from webapp.accounts import throttle


class ThrottledModelBackend(ModelBackend):
    """Every other way in (the admin's log-in form, the API's password log-ins) goes through
    authenticate(): a locked-out name/address is refused there too, password unchecked."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is not None and throttle.check(request, username):
            raise PermissionDenied(throttle.locked_message())
        return super().authenticate(request, username=username, password=password, **kwargs)
