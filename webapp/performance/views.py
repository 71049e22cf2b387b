"""The films behind one of this site's figures (linked from the model page): a version, an
outcome (true/false positive/negative, or the reviewers' disagreement) and optionally a month,
within the films the user may see. A bad parameter is a 400 with the reason."""

import re

from django.core.paginator import Paginator
from django.http import HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.cases.models import CaseImage

from .services import HONESTY, OUTCOME_NAMES, OUTCOME_TITLES, films_behind

MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
PAGE_SIZE = 50


@require_GET
def films(request):
    version = request.GET.get("version", "").strip()
    outcome = request.GET.get("outcome") or None
    month = request.GET.get("month") or None
    if not version or len(version) > 100:
        return HttpResponseBadRequest("Name a model version (?version=...).")
    if outcome is not None and outcome not in OUTCOME_NAMES:
        return HttpResponseBadRequest(f"The outcome must be one of {', '.join(OUTCOME_NAMES)}.")
    if month is not None and not MONTH.match(month):
        return HttpResponseBadRequest("The month must be written YYYY-MM.")
    found = films_behind(request.user, version, outcome, month)
    page = Paginator(found, PAGE_SIZE).get_page(request.GET.get("page"))
    images = CaseImage.objects.in_bulk([o.image_id for o in page.object_list])
    rows = [{"film": o, "image": images.get(o.image_id), "name": OUTCOME_NAMES[o.outcome]}
            for o in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "performance/films.html", {
        "version": version, "title": OUTCOME_TITLES.get(outcome, "all"), "month": month,
        "rows": rows, "page": page, "honesty": HONESTY, "query": query.urlencode()})
