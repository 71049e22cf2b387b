"""REST API v1: thin DRF views over the case pipeline's services.

Access: every object is looked up through ``webapp.cases.services.access`` (or the batch
equivalent here), so a stranger gets 404 for another user's case, image, file or batch, through
every endpoint. Every call that touches data writes an audit row inside the request's
transaction (ATOMIC_REQUESTS), as the pages do."""

from __future__ import annotations

import hashlib
import re
import uuid

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, F, Prefetch, Q
from django.http import FileResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.exceptions import APIException, NotFound, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from webapp.api import dicom
from webapp.api.models import Batch, BatchCase, IdempotencyKey
from webapp.api.payloads import batch_payload, case_payload, image_payload
from webapp.api.serializers import (
    BatchCreateSerializer,
    BatchPageSerializer,
    CasePageSerializer,
    BatchSerializer,
    CaseCreateSerializer,
    CaseFilterSerializer,
    CaseSerializer,
    ErrorSerializer,
    ImageSerializer,
)
from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Case, CaseImage, JobStatus
from webapp.cases.services import access, worklist
from webapp.cases.services.deletion import delete_case
from webapp.cases.services.uploads import UploadRejected, create_case
from webapp.cases.storage import private_storage

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, as a header value can be

COMMON_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No or invalid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="Session without a CSRF token."),
    404: OpenApiResponse(ErrorSerializer, description="Not found, or not yours."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests; see Retry-After."),
}


def errors(*codes, **extra):
    responses = dict(COMMON_ERRORS)
    for code in codes:
        responses[code] = OpenApiResponse(ErrorSerializer)
    responses.update(extra)
    return responses


def exception_handler(exc, context):
    """DRF's handler, with one body shape for every error: {"detail": ..., "errors": [...]}."""
    if isinstance(exc, TooManyFilesSent):
        exc = ValidationError({"images": f"At most {settings.MAX_UPLOAD_FILES} files per case."})
    elif isinstance(exc, RequestDataTooBig):
        exc = ValidationError("The request's form fields are too large.")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) <= {"detail", "errors", "case"} and "detail" in data:
        response.data = {k: (str(v) if k == "detail" else v) for k, v in data.items()}
    else:
        response.data = {"detail": "The request is not valid.", "errors": _flatten(data)}
    return response


def _flatten(data, prefix="") -> list[str]:
    if isinstance(data, dict):
        return [m for key, value in data.items()
                for m in _flatten(value, f"{prefix}{key}: " if key != "non_field_errors" else prefix)]
    if isinstance(data, list):
        return [m for item in data for m in _flatten(item, prefix)]
    return [f"{prefix}{data}"]


class Conflict(APIException):
    status_code = http.HTTP_409_CONFLICT
    default_detail = "Conflict."


class KeyReused(APIException):
    status_code = http.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = ("This Idempotency-Key was already used for a different request; "
                      "use a new key for a new request.")


class ApiView(APIView):
    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            from webapp.api.pagination import CasePagination

            self._paginator = CasePagination()
        return self._paginator

    def audit(self, action, obj=None, **detail):
        request = self.request
        audit.record(request.user, action, obj, audit.client_address(request),
                     detail={"api": f"{request.method} {request.path}", **detail})


# --- idempotency ------------------------------------------------------------------------------

def _idempotency_key(request) -> str | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.match(key):
        raise ValidationError({"Idempotency-Key": "1 to 200 visible ASCII characters."})
    return key


def _lock_key(user, scope: str, key: str) -> None:
    """Serialise requests with the same key (PostgreSQL: a transaction-scoped advisory lock),
    so that two concurrent retries cannot both create. The unique constraint is the backstop."""
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"{user.pk}:{scope}:{key}".encode()).digest()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [int.from_bytes(digest[:8], "big", signed=True)])


def _existing_key(user, scope, key, request_hash):
    record = IdempotencyKey.objects.filter(owner=user, scope=scope, key=key).first()
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise KeyReused()
    return record


def _store_key(user, scope, key, request_hash, **objects):
    try:
        with transaction.atomic():
            IdempotencyKey.objects.create(owner=user, scope=scope, key=key,
                                          request_hash=request_hash, **objects)
    except IntegrityError:
        raise Conflict("A request with this Idempotency-Key is in progress; retry it.")


def _hash_request(files, fields: dict) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(fields.items()):
        digest.update(f"{name}={value}\n".encode())
    for uploaded in files:
        digest.update(f"file {uploaded.name} {uploaded.size}\n".encode())
        for chunk in uploaded.chunks():
            digest.update(chunk)
        uploaded.seek(0)
    return digest.hexdigest()


# --- cases ------------------------------------------------------------------------------------

def _cases_with_images(queryset):
    return queryset.select_related("owner", "api_batch_link").prefetch_related(
        Prefetch("images", queryset=CaseImage.objects.select_related("job")))


def _filter_cases(queryset, params: dict):
    if params.get("batch"):
        queryset = queryset.filter(api_batch_link__batch_id=params["batch"])
    if params.get("client_reference"):
        queryset = queryset.filter(client_reference=params["client_reference"])
    if params.get("created_after"):
        queryset = queryset.filter(created_at__gte=params["created_after"])
    if params.get("created_before"):
        queryset = queryset.filter(created_at__lt=params["created_before"])
    wanted_status, positive = params.get("status"), params.get("positive")
    if wanted_status or positive is not None:
        def n(**q):
            return Count("images", filter=Q(**{f"images__job__{k}": v for k, v in q.items()}))
        queryset = queryset.annotate(
            n_images=Count("images"), n_done=n(status=JobStatus.DONE),
            n_failed=n(status=JobStatus.FAILED), n_queued=n(status=JobStatus.QUEUED),
            n_positive=n(status=JobStatus.DONE, positive=True))
        done = Q(n_images__gt=0, n_done=F("n_images"))
        failed = Q(n_failed__gt=0, n_images=F("n_done") + F("n_failed"))
        queued = Q(n_queued=F("n_images"))
        if wanted_status == JobStatus.DONE:
            queryset = queryset.filter(done)
        elif wanted_status == JobStatus.FAILED:
            queryset = queryset.filter(failed)
        elif wanted_status == JobStatus.QUEUED:
            queryset = queryset.filter(queued)
        elif wanted_status == JobStatus.RUNNING:
            queryset = queryset.exclude(done | failed | queued)
        if positive is True:
            queryset = queryset.filter(n_positive__gt=0)
        elif positive is False:
            queryset = queryset.filter(n_done__gt=0, n_positive=0)
    return queryset


class CaseListCreate(ApiView):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        operation_id="cases_list", summary="Your cases (an administrator: everyone's)",
        parameters=[
            OpenApiParameter("status", str, enum=["queued", "running", "done", "failed"],
                             description="The case's status (done: every image done)."),
            OpenApiParameter("positive", bool, description="Any finished image positive (false: "
                                                           "finished images, none positive)."),
            OpenApiParameter("created_after", OpenApiTypes.DATETIME),
            OpenApiParameter("created_before", OpenApiTypes.DATETIME),
            OpenApiParameter("batch", OpenApiTypes.UUID),
            OpenApiParameter("client_reference", str),
            OpenApiParameter("order", str, enum=list(worklist.ORDERINGS),
                             description="newest (default) or suspicion: cases with an image "
                                         "called positive first, then by highest probability, "
                                         "cases without a result last."),
            OpenApiParameter("page", int), OpenApiParameter("page_size", int),
        ],
        responses={200: CasePageSerializer, **errors(400)},
    )
    def get(self, request):
        filters = CaseFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        cases = _filter_cases(access.visible_cases(request.user), filters.validated_data)
        paginator = self.paginator
        ordered = worklist.order_cases(cases, filters.validated_data["order"])
        page = paginator.paginate_queryset(_cases_with_images(ordered), request, view=self)
        payload = CaseSerializer([case_payload(request, c) for c in page], many=True).data
        self.audit(Action.VIEW_CASE, None, count=len(page),
                   query={k: str(v) for k, v in filters.validated_data.items() if v is not None})
        return paginator.get_paginated_response(payload)

    @extend_schema(
        operation_id="cases_create", summary="Submit one case (one or more X-rays)",
        request={"multipart/form-data": CaseCreateSerializer},
        parameters=[OpenApiParameter(
            "Idempotency-Key", str, OpenApiParameter.HEADER,
            description="Any unique string (e.g. a hash of the files). A retry with the same key "
                        "and the same request creates nothing and answers 200 with the same case; "
                        "the same key with a different request answers 422.")],
        responses={201: CaseSerializer, 200: OpenApiResponse(CaseSerializer, description="Replayed"),
                   **errors(400, 409, 415, 422)},
    )
    def post(self, request):
        user = request.user
        files = request.FILES.getlist("images")
        reference = request.data.get("client_reference", "") or ""
        batch_id = request.data.get("batch", "") or ""
        problems = []
        if not isinstance(reference, str) or any(ord(c) < 32 or ord(c) == 127 for c in reference) \
                or len(reference) > 200:
            problems.append("client_reference: at most 200 characters, no control characters.")
        batch = None
        if batch_id:
            try:
                batch = Batch.objects.get(pk=uuid.UUID(str(batch_id)), owner=user)
            except (ValueError, Batch.DoesNotExist):
                problems.append("batch: no such batch of yours.")
        if not files:
            problems.append("images: choose at least one X-ray file (multipart field 'images').")
        if problems:
            raise ValidationError({"detail": "The request is not valid.", "errors": problems})
        reference = reference.strip()

        key = _idempotency_key(request)
        if key:
            # The key names the files (and reference): a retry answers with the same case, even
            # one that a lost answer had put into an earlier batch.
            request_hash = _hash_request(files, {"client_reference": reference})
            _lock_key(user, "case", key)
            record = _existing_key(user, "case", key, request_hash)
            if record is not None:
                case = _cases_with_images(Case.objects.filter(pk=record.case_id)).get()
                self.audit(Action.VIEW_CASE, case, replay=True)
                response = Response(CaseSerializer(case_payload(request, case)).data, status=http.HTTP_200_OK)
                response["Idempotent-Replayed"] = "true"
                return response

        if reference:
            existing = Case.objects.filter(owner=user, client_reference=reference).first()
            if existing is not None:
                raise Conflict({"detail": f"You already have a case with the reference {reference!r}.",
                                "case": str(existing.pk)})
        try:
            with transaction.atomic():
                case = create_case(user, files, audit.client_address(request), reference)
        except UploadRejected as exc:
            raise ValidationError({"detail": "The upload was refused; nothing was stored.",
                                   "errors": exc.messages})
        except IntegrityError:  # the same reference, created concurrently
            raise Conflict(f"You already have a case with the reference {reference!r}.")
        if batch is not None:
            BatchCase.objects.create(batch=batch, case=case)
        if key:
            _store_key(user, "case", key, request_hash, case=case)
        case = _cases_with_images(Case.objects.filter(pk=case.pk)).get()
        return Response(CaseSerializer(case_payload(request, case)).data, status=http.HTTP_201_CREATED,
                        headers={"Location": case_payload(request, case)["url"]})


class CaseDetail(ApiView):
    @extend_schema(operation_id="cases_retrieve", responses={200: CaseSerializer, **errors()})
    def get(self, request, case_id):
        case = get_object_or_404(_cases_with_images(access.visible_cases(request.user)), pk=case_id)
        self.audit(Action.VIEW_CASE, case)
        return Response(CaseSerializer(case_payload(request, case)).data)

    @extend_schema(operation_id="cases_destroy", responses={204: None, **errors()})
    def delete(self, request, case_id):
        case = access.get_visible_case(request.user, case_id)
        delete_case(request.user, case, audit.client_address(request))
        return Response(status=http.HTTP_204_NO_CONTENT)


class ImageDetail(ApiView):
    @extend_schema(operation_id="images_retrieve", responses={200: ImageSerializer, **errors()})
    def get(self, request, case_id, image_id):
        image = access.get_visible_image(request.user, case_id, image_id)
        self.audit(Action.VIEW_IMAGE, image, kind="result", case=str(case_id))
        return Response(ImageSerializer(image_payload(request, image)).data)


# --- files ------------------------------------------------------------------------------------

class _BinaryRenderer(BaseRenderer):
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else b""


class PNGRenderer(_BinaryRenderer):
    media_type, format = "image/png", "png"


class DicomRenderer(_BinaryRenderer):
    media_type, format = "application/dicom", "dcm"


class JPEGRenderer(_BinaryRenderer):
    media_type, format = "image/jpeg", "jpg"


class ImageFile(ApiView):
    """One file of an image: served only to those who may see the case (404 otherwise)."""

    kind = ""
    renderer_classes = [JSONRenderer, PNGRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response):  # errors are JSON whatever the Accept header said
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    def get(self, request, case_id, image_id):
        image = access.get_visible_image(request.user, case_id, image_id)
        name, content_type, filename = self.file(image)
        download = self.kind in ("original", "dicom-seg", "dicom-sc")
        self.audit(Action.DOWNLOAD if download else Action.VIEW_IMAGE, image,
                   kind=self.kind, case=str(case_id))
        try:
            handle = private_storage.open(name, "rb")
        except FileNotFoundError:
            raise NotFound("The file is missing.")
        response = FileResponse(handle, as_attachment=download, filename=filename,
                                content_type=content_type)
        response["Cache-Control"] = "private, no-store"
        return response

    def file(self, image):
        stem = image.original_name.rsplit(".", 1)[0]
        if self.kind in ("original", "preview"):
            field = getattr(image, self.kind)
            if not field.name:
                raise NotFound("Not available.")
            if self.kind == "original":
                return field.name, image.content_type, image.original_name
            return field.name, "image/png", f"{stem}-preview.png"
        job = image.job
        field = getattr(job, self.kind)
        if job.status != JobStatus.DONE or not field.name:
            raise NotFound("Not available yet: the image has no result.")
        return field.name, "image/png", f"{stem}-{self.kind}.png"


def _file_view(kind, media_type, description, renderers=(PNGRenderer,), base=ImageFile):
    media_types = media_type.split()

    class View(base):
        renderer_classes = [JSONRenderer, *renderers]

        @extend_schema(operation_id=f"images_{kind.replace('-', '_')}", description=description,
                       responses={**{(200, t): OpenApiTypes.BINARY for t in media_types}, **errors()})
        def get(self, request, case_id, image_id):
            return super().get(request, case_id, image_id)

    View.kind = kind
    View.__name__ = View.__qualname__ = f"ImageFile_{kind.replace('-', '_')}"
    return View


class DicomResult(ImageFile):
    def file(self, image):
        try:
            name = dicom.result_file(image, self.kind.removeprefix("dicom-"))
        except dicom.NotAvailable as exc:
            raise NotFound(f"Not available: {exc}.")
        stem = image.original_name.rsplit(".", 1)[0]
        return name, "application/dicom", f"{stem}-{self.kind.removeprefix('dicom-')}.dcm"


OriginalFile = _file_view("original", "application/dicom image/png image/jpeg",
                          "The uploaded file (DICOM, de-identified on upload; PNG or JPEG).",
                          (DicomRenderer, PNGRenderer, JPEGRenderer))
PreviewFile = _file_view("preview", "image/png", "The X-ray as an 8-bit PNG.")
MaskFile = _file_view("mask", "image/png", "The result mask: PNG, the input's size, 0 or 255.")
OverlayFile = _file_view("overlay", "image/png", "The X-ray with the outline: PNG, the input's size.")
DicomSegFile = _file_view("dicom-seg", "application/dicom",
                          "DICOM Segmentation of the result (DICOM inputs only).",
                          (DicomRenderer,), DicomResult)
DicomScFile = _file_view("dicom-sc", "application/dicom",
                         "DICOM Secondary Capture of the overlay (DICOM inputs only).",
                         (DicomRenderer,), DicomResult)


# --- batches ----------------------------------------------------------------------------------

def visible_batches(user):
    batches = Batch.objects.select_related("owner")
    if getattr(user, "is_admin_role", False):
        return batches
    return batches.filter(owner=user)


class BatchListCreate(ApiView):
    parser_classes = [JSONParser, FormParser, MultiPartParser]

    @extend_schema(operation_id="batches_list",
                   parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
                   responses={200: BatchPageSerializer, **errors()})
    def get(self, request):
        page = self.paginator.paginate_queryset(
            visible_batches(request.user).order_by("-created_at", "pk"), request, view=self)
        self.audit(Action.VIEW_CASE, None, batches=len(page))
        return self.paginator.get_paginated_response(
            BatchSerializer([batch_payload(request, b) for b in page], many=True).data)

    @extend_schema(
        operation_id="batches_create",
        summary="Open a batch; then POST each case with batch=<id>, and follow its progress",
        request=BatchCreateSerializer,
        parameters=[OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER)],
        responses={201: BatchSerializer, 200: OpenApiResponse(BatchSerializer, description="Replayed"),
                   **errors(400, 409, 415, 422)})
    def post(self, request):
        serializer = BatchCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        key = _idempotency_key(request)
        if key:
            request_hash = _hash_request([], {k: str(v) for k, v in data.items()})
            _lock_key(request.user, "batch", key)
            record = _existing_key(request.user, "batch", key, request_hash)
            if record is not None:
                self.audit(Action.VIEW_CASE, record.batch, replay=True)
                response = Response(BatchSerializer(batch_payload(request, record.batch)).data)
                response["Idempotent-Replayed"] = "true"
                return response
        batch = Batch.objects.create(owner=request.user, label=data.get("label", ""),
                                     expected_cases=data.get("expected_cases"))
        if key:
            _store_key(request.user, "batch", key, request_hash, batch=batch)
        self.audit(Action.UPLOAD, batch, label=batch.label, expected_cases=batch.expected_cases)
        return Response(BatchSerializer(batch_payload(request, batch)).data, status=http.HTTP_201_CREATED)


class BatchDetail(ApiView):
    @extend_schema(operation_id="batches_retrieve", responses={200: BatchSerializer, **errors()})
    def get(self, request, batch_id):
        batch = get_object_or_404(visible_batches(request.user), pk=batch_id)
        self.audit(Action.VIEW_CASE, batch)
        return Response(BatchSerializer(batch_payload(request, batch)).data)
