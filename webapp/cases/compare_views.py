"""The compare view: one film of a case and the patient's prior film side by side, zoom and pan
in step (static/js/compare.js). Thin, as views.py: access through services.access, what to show
from services.comparison_display, one audit row per case shown."""

from django.http import Http404
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.services import access, comparison_display


@require_GET
def image_compare(request, case_id, image_id):
    image = access.get_visible_image(request.user, case_id, image_id)
    comparison = comparison_display.compare_films(request.user, image)
    if comparison is None:  # no prior, or one this user may not see: nothing to show
        raise Http404("This film has no prior film that you may see.")
    prior = comparison.prior.image
    # The page shows both cases' films: a view row for each, which also covers the films'
    # fetches (views.image_file), as the case page's row covers its own.
    audit.record_page_view(request, Action.VIEW_CASE, image.case, detail={
        "page": "compare", "images": [{"id": str(image.pk), "result": True}],
        "compared_with": str(prior.pk)})
    audit.record_page_view(request, Action.VIEW_CASE, prior.case, detail={
        "page": "compare", "images": [{"id": str(prior.pk), "result": True}],
        "compared_with": str(image.pk)})
    return render(request, "cases/compare.html", {
        "case": image.case, "image": image, "comparison": comparison,
        "case_url": reverse("cases:detail", kwargs={"case_id": image.case_id}) + f"#image-{image.pk}",
        "prior_url": reverse("cases:detail", kwargs={"case_id": prior.case_id}) + f"#image-{prior.pk}",
    })
