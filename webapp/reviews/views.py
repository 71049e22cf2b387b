"""The review form's POST: thin, as the case views are. The form checks the fields, the service
checks the result and records the review with its audit row; the case page shows the outcome."""

from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from webapp.audit import services as audit
from webapp.cases.services import access

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
