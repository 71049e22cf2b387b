from django import forms
from django.contrib.auth.forms import AuthenticationForm
from django.core.validators import MaxValueValidator

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
