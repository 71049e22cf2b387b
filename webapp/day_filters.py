"""Day filters of the list pages (the worklist, the audit log): "From" and "Until (inclusive)"
as date pickers, and those days as the datetimes a query compares, in the site's time zone."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django import forms
from django.utils import timezone


def day_field(label: str) -> forms.DateField:
    return forms.DateField(label=label, required=False,
                           widget=forms.DateInput(attrs={"type": "date"}))


def day_range(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """[start, end) of the days ``first`` to ``last`` inclusive; None: no bound on that side.
    The calendar's first and last days are no bound at all (they select the same rows): the day
    after 9999-12-31 does not exist, and year 1's midnight may leave datetime's range in UTC."""
    start = _midnight(first) if first and first > date.min else None
    end = _midnight(last + timedelta(days=1)) if last and last < date.max else None
    return start, end


def _midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))
