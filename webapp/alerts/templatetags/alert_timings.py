from django import template

from webapp.alerts.timings import format_seconds

register = template.Library()


@register.filter
def duration(seconds):
    """Seconds as an administrator reads them (4.2 s, 3 min 12 s); "–" for none."""
    return format_seconds(seconds)
