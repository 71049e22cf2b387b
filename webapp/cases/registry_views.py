"""The model registry's page for administrators (webapp.cases.services.registry): candidates
with their figures beside the active model's, upload, promote, roll back. A clinician gets 403,
as for the alert timings: the page is no secret, the actions are not theirs."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.cases.forms import ModelUploadForm
from webapp.cases.models import RegisteredModel
from webapp.cases.services import registry
from webapp.cases.services.registry_page import registry_rows


def _require_admin(request):
    if not getattr(request.user, "is_admin_role", False):
        raise PermissionDenied("Only administrators manage the model registry.")


@require_GET
def registry_page(request):
    _require_admin(request)
    return render(request, "cases/model_registry.html",
                  {**registry_rows(), "upload_form": ModelUploadForm()})


@require_POST
def promote(request, pk: int):
    _require_admin(request)
    model = get_object_or_404(RegisteredModel, pk=pk)
    try:
        registry.promote(model, request.user)
    except registry.PromotionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"{model.version} is now the active model; the workers switch "
                                  "to it before their next job.")
    return redirect("cases:model_registry")


@require_POST
def roll_back(request):
    _require_admin(request)
    try:
        model = registry.roll_back(request.user)
    except registry.PromotionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Rolled back: {model.version} is the active model again.")
    return redirect("cases:model_registry")


@require_POST
def upload(request):
    _require_admin(request)
    form = ModelUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            model = registry.accept_upload(form.cleaned_data["file"], request.user)
        except registry.ModelRejected as exc:
            form.add_error("file", str(exc))
        else:
            messages.success(request, f"{model.version} uploaded; a worker is checking that it "
                                      "loads before it can be promoted.")
            return redirect("cases:model_registry")
    return render(request, "cases/model_registry.html", {**registry_rows(), "upload_form": form},
                  status=400)
