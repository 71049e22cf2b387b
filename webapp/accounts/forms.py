from django import forms
from django.contrib.auth.forms import AuthenticationForm

from webapp.accounts import throttle


class ThrottledAuthenticationForm(AuthenticationForm):
    """The log-in page: a locked-out name/address is refused before the password is checked,
    with a message that says so."""

    locked = False

    def clean(self):
        if throttle.check(self.request, self.cleaned_data.get("username")):
            self.locked = True
            raise forms.ValidationError(throttle.locked_message(), code="locked")
        return super().clean()
