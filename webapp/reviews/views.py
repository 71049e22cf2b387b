"""The review form's POST and the corrected outline's GET and POST: thin, as the case views are.
The form (or ``outlines.read_mask``) checks the input, the service records it with its audit
row; the case page shows the outcome."""

from django.contrib import messages
from django.db import transaction
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.storage import private_storage
from webapp.cases.services import access

from . import outlines
from .forms import ReviewForm
from .services import ReviewRefused, record_review


@require_POST
def review_image(request, case_id, image_id):
    image = access.get_visible_image(request.user, case_id, image_id)
    # The page comes back scrolled to this image: the outcome is said beside its review form
    # (reviews/_review.html), where the clinician is looking, not at the top of the page.
    beside = f"image-{image.pk}"
    form = ReviewForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"The review was not saved. {form.error_text()}", extra_tags=beside)
    else:
        try:
            _, first = record_review(request.user, image, client_address=audit.client_address(request),
                                     **form.cleaned_data)
        except ReviewRefused as exc:
            messages.error(request, f"The review was not saved. {exc.message}", extra_tags=beside)
        else:
            messages.success(request, "Your review was saved." if first else "Your review was updated.",
                             extra_tags=beside)
    return redirect(reverse("cases:detail", kwargs={"case_id": image.case_id}) + f"#image-{image.pk}")


# Not one transaction per request: serving reads a file, and a save is one short transaction
# of its own (outlines.save_outline), which removes its file if it does not commit.
@transaction.non_atomic_requests
@require_http_methods(["GET", "POST"])
@never_cache
def outline(request, case_id, image_id):
    """GET: the latest corrected outline (PNG, 0 or 255, the film's size); 404 when there is
    none. POST (multipart, the PNG in ``mask``): save a new version; JSON, or 400 with the
    reason. A stranger gets 404 for both (access.get_visible_image)."""
    image = access.get_visible_image(request.user, case_id, image_id)
    if request.method == "POST":
        return _save_outline(request, image)
    latest = outlines.latest_outline(image)
    if latest is None:
        raise Http404("No corrected outline.")
    # Shown by the case page (its editor starts from it): covered by the page's audit row.
    if not audit.covered_by_page_view(request, case_id):
        with transaction.atomic():
            audit.record(request.user, Action.VIEW_IMAGE, image, audit.client_address(request),
                         detail={"kind": "corrected-outline", "case": str(image.case_id),
                                 "version": latest.version})
    try:
        handle = private_storage.open(latest.mask.name, "rb")
    except FileNotFoundError as exc:
        raise Http404("The file is missing.") from exc
    response = FileResponse(handle, content_type="image/png")
    response["Cache-Control"] = "private, no-store"  # patient images: never in a shared cache
    return response


def _save_outline(request, image):
    upload = request.FILES.get("mask")
    if upload is None:
        return JsonResponse({"error": "Send the outline as a PNG file in the form field "
                                      "\"mask\"."}, status=400)
    # One byte more than allowed is enough to refuse it: never read a huge upload whole.
    data = upload.read(outlines.MAX_BYTES + 1)
    try:
        saved = outlines.save_outline(request.user, image, data, audit.client_address(request))
    except outlines.OutlineRefused as exc:
        return JsonResponse({"error": exc.message}, status=400)
    return JsonResponse({
        "version": saved.version, "empty": saved.empty,
        "corrected_by": request.user.get_username(),
        "url": reverse("reviews:outline", kwargs={"case_id": image.case_id, "image_id": image.pk}),
    }, status=201)
