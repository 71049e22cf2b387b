"""{% site_figures model %} on the model page (this site's figures beside the held-out ones) and
{% drift_banner %} in base.html (administrators, every page, while an alarm is active)."""

from django import template

from webapp.performance.drift import active_alarms, judge, rule_text
from webapp.performance.services import HONESTY, site_figures as compute

register = template.Library()


@register.inclusion_tag("performance/_site_figures.html", takes_context=True)
def site_figures(context, model):
    user = context["request"].user
    [entry] = compute(user, model.version)
    return {"entry": entry, "check": judge(entry), "rule": rule_text(), "honesty": HONESTY,
            "admin": getattr(user, "is_admin_role", False), "model": model}


@register.inclusion_tag("performance/_drift_banner.html", takes_context=True)
def drift_banner(context):
    request = context.get("request")
    user = getattr(request, "user", None)
    if not getattr(user, "is_admin_role", False):
        return {"alarms": []}
    return {"alarms": list(active_alarms())}


@register.filter
def percent(value):
    """0.734 -> "73%"; None -> "–"."""
    return "–" if value is None else f"{value * 100:.0f}%"


@register.simple_tag
def films_query(version, outcome="", month=""):
    from django.utils.http import urlencode

    query = {"version": version}
    if outcome:
        query["outcome"] = outcome
    if month:
        query["month"] = month
    return urlencode(query)
