"""Thin views: the acknowledgement's POST (from the worklist and the case page) and the
administrators' timings page. Access is the case's (``webapp.cases.services.access``): a
stranger's film is not found (404), as everywhere else."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_POST

from webapp.audit import services as audit
from webapp.cases.services import access

from . import timings
from .acknowledgements import NothingToAcknowledge, acknowledge, seen_by


@require_POST
def acknowledge_image(request, case_id, image_id):
    image = access.get_visible_image(request.user, case_id, image_id)
    case_page = reverse("cases:detail", kwargs={"case_id": image.case_id}) + f"#image-{image.pk}"
    try:
        outcome = acknowledge(request.user, image, audit.client_address(request))
    except NothingToAcknowledge as exc:
        # Only a stale page or a hand-made request gets here (no button is shown for such a
        # film); the reader may see the case, so the reason is no secret.
        return render(request, "alerts/nothing_to_acknowledge.html",
                      {"reason": exc.message, "case_page": case_page}, status=400)
    text = seen_by(outcome.acknowledgement)
    if outcome.created:
        messages.success(request, f"Acknowledged. {text}.")
    else:
        messages.info(request, f"Already acknowledged. {text}.")
    # Back where the button was: the worklist (with its filters) or the case page.
    target = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        target = case_page
    return redirect(target)


@require_GET
def timings_page(request):
    """Administrators only: the times belong to the whole site, not to one clinician's cases.
    A clinician gets 403, as for deleting a teammate's case: the page is no secret."""
    if not getattr(request.user, "is_admin_role", False):
        raise PermissionDenied("Only administrators see the alert timings.")
    return render(request, "alerts/timings.html", {"summary": timings.summary()})
