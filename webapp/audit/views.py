from django.core.paginator import Paginator
from django.shortcuts import render

from . import services


def audit_list(request):
    events = services.visible_events(request.user)
    page = Paginator(events, 50).get_page(request.GET.get("page"))
    return render(request, "audit/list.html", {"page": page})
