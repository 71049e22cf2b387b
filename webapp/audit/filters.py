"""The audit page's filters: a form over its GET parameters, as the worklist's (a bad value is
shown as an error and the list still renders, unfiltered by it)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone

from .models import Action


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class AuditFilterForm(forms.Form):
    user = forms.CharField(label="User", max_length=150, required=False,
                           help_text="A user name, exactly (failed log-ins under that name too).")
    action = forms.ChoiceField(label="Action", required=False, choices=[("", "any"), *Action.choices])
    after = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    before = forms.DateField(label="Until (inclusive)", required=False,
                             widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, by_user: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        if not by_user:  # a clinician sees only their own trail: nobody else to choose
            del self.fields["user"]

    def clean(self):
        data = super().clean()
        if data.get("after") and data.get("before") and data["after"] > data["before"]:
            raise forms.ValidationError("'From' is after 'Until': no event can match.")
        return data

    def filter(self, events: QuerySet) -> QuerySet:
        """``events`` narrowed by the valid filters (all of them ignored when one is invalid)."""
        if not self.is_valid():
            return events
        data = self.cleaned_data
        if data.get("user"):
            name = data["user"].strip()
            events = events.filter(Q(username__iexact=name) | Q(username="", detail__username__iexact=name))
        if data.get("action"):
            events = events.filter(action=data["action"])
        # Days in the site's time zone. The calendar's first and last days are no bound at all
        # (a day past 9999-12-31 does not exist; year 1's midnight may leave datetime's range in UTC).
        if data.get("after") and data["after"] > date.min:
            events = events.filter(at__gte=_midnight(data["after"]))
        if data.get("before") and data["before"] < date.max:
            events = events.filter(at__lt=_midnight(data["before"] + timedelta(days=1)))
        return events
