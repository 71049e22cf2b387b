from django import forms
from django.contrib.auth.forms import AuthenticationForm

from webapp.accounts import throttle


class ThrottledAuthenticationForm(AuthenticationForm):
    """The log-in page: a locked-out name/address, or an address that must still wait, is
    refused before the password is checked, with a message that says so."""

    locked = False

    def clean(self):
        refused = throttle.refusal(self.request, self.cleaned_data.get("username"))
        if refused is not None:
            self.locked = True
            raise forms.ValidationError(refused, code="locked")
        return super().clean()
