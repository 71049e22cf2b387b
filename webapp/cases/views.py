"""Thin views: parse the request, call a service, render. Access checks live in
services.access (querysets), so every view gets a 404 for what the user may not see."""

from django.contrib import messages
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.forms import UploadForm
from webapp.cases.worklist_filters import WorklistFilterForm
from webapp.reviews.services import filter_reviewed, reviews_for_images
from webapp.alerts.acknowledgements import attach_to_rows as attach_acknowledgements
from webapp.cases.models import JobStatus
from webapp.cases.services import access, comparison_display, display, files, serving, status, worklist
from webapp.cases.services.deletion import delete_case
from webapp.cases.services.model_versions import known_model_versions
from webapp.cases.services.submission import submit_case
from webapp.cases.services.uploads import UploadRejected

IMAGE_KINDS = ("original", "preview", "mask", "overlay")  # the pages serve no DICOM results
SHOWN_BY_THE_CASE_PAGE = ("preview", "mask", "overlay")  # fetched by the page itself


# Not one transaction per request (ATOMIC_REQUESTS): reading the files takes seconds, and on
# SQLite an open transaction holds the one write lock that every other request waits for. The
# case is stored in a short transaction of its own (uploads.store_case; issue 21).
@transaction.non_atomic_requests
@require_http_methods(["GET", "POST"])
def upload(request):
    if request.method == "POST":
        form = UploadForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            try:
                case = submit_case(request.user, form.cleaned_data["images"],
                                   audit.client_address(request),
                                   form.cleaned_data["client_reference"],
                                   team=form.cleaned_data["team"],
                                   patient_reference=form.cleaned_data["patient_reference"])
            except UploadRejected as exc:
                for message in exc.messages:
                    form.add_error("images", message)
            else:
                return redirect("cases:detail", case_id=case.pk)
        return render(request, "cases/upload.html", {"form": form}, status=400)
    return render(request, "cases/upload.html", {"form": UploadForm(user=request.user)})


WORKLIST_PAGE_SIZE = 25


def _worklist(request) -> dict:
    """The worklist's cases for this request's filters, order and page; shared by the page and
    the JSON it polls, so both show the same rows."""
    form = WorklistFilterForm(request.GET)
    ordering = worklist.parse_ordering(request.GET.get("order"), default=worklist.URGENCY)
    filters = form.filters()
    cases = worklist.filter_cases(access.visible_cases(request.user), filters)
    if filters.get("reviewed") is not None:  # the reviews app sits above cases: applied here
        cases = filter_reviewed(cases, filters["reviewed"])
    cases = worklist.with_images(worklist.order_cases(cases, ordering))
    page = Paginator(cases, WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {"form": form, "ordering": ordering, "orderings": worklist.ORDERINGS, "page": page,
            # Each row with its review-first films' acknowledgements (the alerts app sits above cases).
            "rows": attach_acknowledgements([worklist.worklist_row(case) for case in page.object_list],
                                            page.object_list),
            "query": query.urlencode(),
            # Whose case it is matters once teammates' cases share the list.
            "show_owner": request.user.teams.exists()}


@require_GET
def case_list(request):
    return render(request, "cases/list.html", _worklist(request))


@require_GET
@never_cache
def worklist_json(request):
    """Polled by the worklist page (worklist.js) so that new results appear without a reload;
    not audited, as the status JSON is not (the page view is)."""
    context = _worklist(request)
    page = context["page"]
    return JsonResponse({
        "count": page.paginator.count, "page": page.number, "pages": page.paginator.num_pages,
        "rows": context["rows"],
        "html": render_to_string("cases/_worklist_rows.html", context, request=request),
    })


@require_GET
def model_versions(request):
    return render(request, "cases/model_versions.html", {"models": known_model_versions()})


def _case_context(request, case) -> dict:
    images = list(case.images.select_related("job"))
    reviews = reviews_for_images(images)
    # The result as the status JSON gives it, for a page opened when done.
    summaries = display.describe_results([status.job_summary(image.job) for image in images])
    for image, summary in zip(images, summaries):
        image.result_text, image.findings_rows = summary["result_text"], summary["findings_rows"]
        image.review_list = reviews[image.pk]
    # The change since the patient's prior film, with its links only where this user may see it.
    comparisons = comparison_display.comparison_lines(request.user, images)
    for image in images:
        image.comparison_line = comparisons.get(image.pk)
    return {
        "case": case, "images": images, "study": display.study_fields(case.study_metadata),
        "study_header": display.study_header(case.study_metadata),
        "can_delete": access.may_delete(request.user, case),
        "status_url": reverse("cases:status", kwargs={"case_id": case.pk}),
    }


def _render_case_page(request, case, template, **detail):
    """One audit row per view of the case: the images it shows, and whether with a result.
    The images the page then fetches write none of their own (``image_file``)."""
    context = _case_context(request, case)
    audit.record_page_view(request, Action.VIEW_CASE, case, detail={**detail, "images": [
        {"id": str(image.pk), "result": image.job.status == JobStatus.DONE} for image in context["images"]]})
    return render(request, template, context)


@require_GET
def case_detail(request, case_id):
    case = access.get_visible_case(request.user, case_id)
    return _render_case_page(request, case, "cases/detail.html")


@require_GET
def case_report(request, case_id):
    """One printable page: images, overlays, findings, model version, the reviewers' verdicts."""
    case = access.get_visible_case(request.user, case_id)
    return _render_case_page(request, case, "cases/report.html", page="report")


@require_GET
@never_cache
def case_status(request, case_id):
    """Polled about once a second by the case page; not audited (the page view is)."""
    case = access.get_visible_case(request.user, case_id)
    payload = status.case_status(case)
    for image in display.describe_results(payload["images"]):
        done = image["status"] == JobStatus.DONE
        for kind in ("overlay", "mask"):
            image[f"{kind}_url"] = _file_url(case.pk, image["id"], kind) if done else None
        image["preview_url"] = _file_url(case.pk, image["id"], "preview")
    lines = comparison_display.case_comparison_lines(request.user, case)
    for image in payload["images"]:
        image["comparison_line"] = lines.get(image["id"])  # text and links, for case.js
    return JsonResponse(payload)


@require_GET
def image_file(request, case_id, image_id, kind):
    if kind not in IMAGE_KINDS:
        raise Http404
    image = access.get_visible_image(request.user, case_id, image_id)
    # What the case page shows, fetched after that page's audit row in this session, is part of
    # that access; anything else (the original, a download, a fetch no page view accounts for)
    # writes its own row.
    shown = kind in SHOWN_BY_THE_CASE_PAGE and audit.covered_by_page_view(request, case_id)
    try:
        return serving.serve(request.user, image, kind, download=request.GET.get("download") == "1",
                             client_address=audit.client_address(request), audited=not shown)
    except files.NotAvailable as exc:
        raise Http404(str(exc)) from exc


@require_POST
def case_delete(request, case_id):
    case = access.get_visible_case(request.user, case_id)
    delete_case(request.user, case, audit.client_address(request))
    messages.success(request, "The case was deleted.")
    return redirect("cases:list")


def _file_url(case_id, image_id, kind):
    return reverse("cases:image_file", kwargs={"case_id": case_id, "image_id": image_id, "kind": kind})
