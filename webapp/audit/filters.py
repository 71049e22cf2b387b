"""The audit page's filters: a form over its GET parameters, as the worklist's (a bad value is
shown as an error and the list still renders, unfiltered by it)."""

from __future__ import annotations

from django import forms
from django.db.models import Q, QuerySet

from webapp.day_filters import day_field, day_range

from .models import Action


class AuditFilterForm(forms.Form):
    user = forms.CharField(label="User", max_length=150, required=False,
                           help_text="A user name, exactly (failed log-ins under that name too).")
    action = forms.ChoiceField(label="Action", required=False, choices=[("", "any"), *Action.choices])
    after = day_field("From")
    before = day_field("Until (inclusive)")

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
        start, end = day_range(data.get("after"), data.get("before"))
        if start:
            events = events.filter(at__gte=start)
        if end:
            events = events.filter(at__lt=end)
        return events
