"""Thin views: parse the request, call a service, render. Access checks live in
services.access (querysets), so every view gets a 404 for what the user may not see."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.forms import UploadForm
from webapp.cases.models import JobStatus
from webapp.cases.services import access, display, status, worklist
from webapp.cases.services.model_versions import known_model_versions
from webapp.cases.services.deletion import delete_case
from webapp.cases.services.uploads import UploadRejected, create_case
from webapp.cases.storage import private_storage

IMAGE_KINDS = ("original", "preview", "mask", "overlay")


@require_http_methods(["GET", "POST"])
def upload(request):
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                case = create_case(request.user, form.cleaned_data["images"],
                                   audit.client_address(request),
                                   form.cleaned_data["client_reference"])
            except UploadRejected as exc:
                for message in exc.messages:
                    form.add_error("images", message)
            else:
                return redirect("cases:detail", case_id=case.pk)
        return render(request, "cases/upload.html", {"form": form}, status=400)
    return render(request, "cases/upload.html", {"form": UploadForm()})


@require_GET
def case_list(request):
    ordering = worklist.parse_ordering(request.GET.get("order"))
    cases = worklist.order_cases(access.visible_cases(request.user), ordering).select_related("owner")
    page = Paginator(cases, 25).get_page(request.GET.get("page"))
    rows = [(case, status.case_status(case)) for case in page.object_list]
    return render(request, "cases/list.html", {"page": page, "rows": rows, "ordering": ordering,
                                               "orderings": worklist.ORDERINGS})


@require_GET
def model_versions(request):
    return render(request, "cases/model_versions.html", {"models": known_model_versions()})


@require_GET
def case_detail(request, case_id):
    case = access.get_visible_case(request.user, case_id)
    audit.record(request.user, Action.VIEW_CASE, case, audit.client_address(request))
    images = list(case.images.select_related("job"))
    thresholds = display.image_thresholds(image.job.model_version for image in images)
    for image in images:  # the result as the status JSON gives it, for a page opened when done
        image.result_text = display.result_text(status.job_summary(image.job),
                                                thresholds.get(image.job.model_version))
    return render(request, "cases/detail.html", {
        "case": case, "images": images, "study": display.study_fields(case.study_metadata),
        "status_url": reverse("cases:status", kwargs={"case_id": case.pk}),
    })


@require_GET
@never_cache
def case_status(request, case_id):
    """Polled about once a second by the case page; not audited (the page view is)."""
    case = access.get_visible_case(request.user, case_id)
    payload = status.case_status(case)
    thresholds = display.image_thresholds(image["model_version"] for image in payload["images"])
    for image in payload["images"]:
        image["image_threshold"] = thresholds.get(image["model_version"])
        image["result_text"] = display.result_text(image, image["image_threshold"])
        done = image["status"] == JobStatus.DONE
        for kind in ("overlay", "mask"):
            image[f"{kind}_url"] = _file_url(case.pk, image["id"], kind) if done else None
        image["preview_url"] = _file_url(case.pk, image["id"], "preview")
    return JsonResponse(payload)


@require_GET
def image_file(request, case_id, image_id, kind):
    if kind not in IMAGE_KINDS:
        raise Http404
    image = access.get_visible_image(request.user, case_id, image_id)
    field = image.job.mask if kind == "mask" else image.job.overlay if kind == "overlay" \
        else getattr(image, kind)
    if not field.name:
        raise Http404("Not available yet.")
    # The original is always a download: it may be DICOM, and we never render uploads inline.
    download = kind == "original" or request.GET.get("download") == "1"
    audit.record(request.user, Action.DOWNLOAD if download else Action.VIEW_IMAGE, image,
                 audit.client_address(request), detail={"kind": kind, "case": str(case_id)})
    try:
        handle = private_storage.open(field.name, "rb")
    except FileNotFoundError:
        raise Http404("The file is missing.")
    stem = image.original_name.rsplit(".", 1)[0]
    filename = image.original_name if kind == "original" else f"{stem}-{kind}.png"
    response = FileResponse(handle, as_attachment=download, filename=filename,
                            content_type=image.content_type if kind == "original" else "image/png")
    response["Cache-Control"] = "private, no-store"
    return response


@require_POST
def case_delete(request, case_id):
    case = access.get_visible_case(request.user, case_id)
    delete_case(request.user, case, audit.client_address(request))
    messages.success(request, "The case was deleted.")
    return redirect("cases:list")


def _file_url(case_id, image_id, kind):
    return reverse("cases:image_file", kwargs={"case_id": case_id, "image_id": image_id, "kind": kind})
