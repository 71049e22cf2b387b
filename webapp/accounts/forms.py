from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxValueValidator

from webapp.accounts import login_limits


class ThrottledAuthenticationForm(AuthenticationForm):
    """The log-in page: a locked-out name/address, or an address that must still wait, is
    refused before the password is checked (backends.LoginLimitsBackend, django-axes), and the
    page says so, as it does for the failure that reaches the name's limit."""

    locked = False

    directory_unreachable = False

    def get_invalid_login_error(self):
        # Refused by the failed-log-in limits (webapp.accounts.login_limits): the reason, and
        # axes' lockout response then keeps this page (login_limits.lockout_response).
        if (refused := login_limits.refusal_message(self.request)) is not None:
            self.locked = self.request.login_limits_shown = True
            return forms.ValidationError(refused, code="locked")
        # The directory was down (webapp.accounts.ldap_backend): say so, not "wrong password".
        if getattr(self.request, "directory_unreachable", False):
            self.directory_unreachable = True
            return forms.ValidationError(
                "The directory could not be reached; your password could not be checked. "
                "Please try again in a few minutes, and tell IT if this goes on.",
                code="directory_unreachable")
        return super().get_invalid_login_error()


class ApiTokenForm(forms.Form):
    name = forms.CharField(max_length=100, required=False,
                           help_text='What it is for, e.g. "PACS bridge" (shown in your list).')
    days = forms.IntegerField(min_value=1, label="Expires in (days)")

    def __init__(self, *args, max_days: int, **kwargs):
        super().__init__(*args, **kwargs)
        days = self.fields["days"]
        days.max_value, days.initial = max_days, max_days
        days.validators.append(MaxValueValidator(max_days))
        days.widget.attrs.update(min=1, max=max_days)
