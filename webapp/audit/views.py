from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from . import links, services
from .filters import AuditFilterForm

PAGE_SIZE = 50


@require_GET
def audit_list(request):
    """The audit log: administrators see everyone's, others their own; filtered by user,
    action and days (a GET form, so a filtered page can be bookmarked or sent on)."""
    form = AuditFilterForm(request.GET, by_user=getattr(request.user, "is_admin_role", False))
    events = form.filter(services.visible_events(request.user))
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/list.html", {
        "form": form, "page": page, "query": query.urlencode(),
        "events": links.attach_links(request.user, page.object_list)})
