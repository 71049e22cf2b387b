"""``{% pacs_status case %}``: on the case page, where a case came from over DICOM and whether
its results reached the PACS. A tag of this app, so that the cases app needs no import of it."""

from django import template

from webapp.pacs.services.status import pacs_status as case_pacs_status

register = template.Library()


@register.inclusion_tag("pacs/_status.html", takes_context=True)
def pacs_status(context, case):
    user = context["request"].user
    return {"pacs": case_pacs_status(case), "is_admin": getattr(user, "is_admin_role", False)}
