"""/api/v1/cases/: list (filtered, ordered, paginated) and submit; one case: read, delete; one
image: read. Submitting goes through the same service as the upload page
(``submission``: prepare_case, then store_submission); the API adds batches and idempotency keys."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from webapp.api import batches, idempotency
from webapp.api.errors import Conflict, ErrorSerializer, errors, refused
from webapp.api.payloads import case_payload, image_payload
from webapp.api.serializers import (
    CaseCreateSerializer,
    CaseFilterSerializer,
    CasePageSerializer,
    CaseSerializer,
    ImageSerializer,
)
from webapp.api.views.base import ApiView
from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Case, CaseImage
from webapp.cases.services import access, patients, worklist
from webapp.cases.services.deletion import delete_case
from webapp.cases.services.submission import prepare_case, store_submission
from webapp.cases.services.uploads import DuplicateReference, UploadRejected


def _with_images(cases):
    return cases.select_related("owner", "team", "api_batch_link").prefetch_related(
        Prefetch("images", queryset=CaseImage.objects.select_related("job")))


def _submitted_form(request) -> dict:
    """The request's fields for CaseCreateSerializer: files from the file parts only (a text
    field named ``images`` is no file); an empty field counts as absent."""
    form = {"images": request.FILES.getlist("images")}
    for name in ("client_reference", "patient_reference", "batch", "team"):
        value = request.data.get(name)
        if value not in (None, ""):
            form[name] = value
    return form


# Not one transaction per request: a submission's files are read outside any transaction (on
# SQLite an open one holds the write lock every other request waits for); see ``_create``.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
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
            OpenApiParameter("q", str, description="Part of the reference or of a file name."),
            OpenApiParameter("review_first", bool, description="Only cases with an image flagged "
                                                               "review first."),
            OpenApiParameter("order", str, enum=list(worklist.ORDERINGS),
                             description="newest (default); suspicion: cases with an image "
                                         "called positive first, then by highest probability, "
                                         "cases without a result last; urgency: waiting cases "
                                         "first, then positive or review-first, then failed, "
                                         "then the rest, each by probability and area."),
            OpenApiParameter("page", int), OpenApiParameter("page_size", int),
        ],
        responses={200: CasePageSerializer, **errors(400)},
    )
    def get(self, request):
        filters = CaseFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        cases = worklist.filter_cases(access.visible_cases(request.user), filters.validated_data)
        ordered = worklist.order_cases(cases, filters.validated_data["order"])
        page = self.paginator.paginate_queryset(_with_images(ordered), request, view=self)
        payload = CaseSerializer([case_payload(request, c) for c in page], many=True).data
        self.audit(Action.VIEW_CASE, None, count=len(page),
                   query={k: str(v) for k, v in filters.validated_data.items() if v is not None})
        return self.paginator.get_paginated_response(payload)

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
        form = CaseCreateSerializer(data=_submitted_form(request), context={"user": request.user})
        form.is_valid(raise_exception=True)
        files = form.validated_data["images"]
        reference = form.validated_data.get("client_reference", "")
        team = form.validated_data.get("team")  # one of the user's; None: not given, the default
        # The key names the files, reference and team: a retry answers with the same case, even
        # one that a lost answer had put into an earlier batch.
        fields = {"client_reference": reference}
        if team is not None:  # only when given, so keys of requests without one hash as before
            fields["team"] = team.pk
        patient_reference = form.validated_data.get("patient_reference", "")
        if patient_reference:  # its keyed hash: the key's record never holds the reference
            fields["patient"] = patients.reference_key(patient_reference)
        with transaction.atomic():  # a retry is answered here, before any file is read
            claim = idempotency.begin(request, "case", files, fields)
            record = claim.previous() if claim else None
        if record is None:
            try:
                record, case = self._create(request, claim, files, reference, team,
                                            form.validated_data.get("batch"), patient_reference)
            except DuplicateReference as exc:
                body = {"detail": exc.messages[0]}
                if exc.case_id is not None:
                    body["case"] = str(exc.case_id)
                raise Conflict(body) from exc
            except UploadRejected as exc:
                raise refused(exc.messages) from exc
        if record is not None:
            case = _with_images(Case.objects.filter(pk=record.case_id)).get()
            self.audit(Action.VIEW_CASE, case, replay=True)
            return idempotency.replay(CaseSerializer(case_payload(request, case)).data)
        payload = case_payload(request, _with_images(Case.objects.filter(pk=case.pk)).get())
        return Response(CaseSerializer(payload).data, status=http.HTTP_201_CREATED,
                        headers={"Location": payload["url"]})

    def _create(self, request, claim, files, reference, team, batch, patient_reference=""):
        """(None, the new case), or (the key's record, None) when a retry with the same key
        created the case while this one read its files. The files are read outside any
        transaction; the case, its batch link and the key are stored in one short one."""
        prepared = prepare_case(request.user, files, reference, team, patient_reference)
        with transaction.atomic():
            if claim:
                idempotency.lock(claim)
                record = claim.previous()
                if record is not None:
                    return record, None
            case = store_submission(request.user, prepared, audit.client_address(request))
            if batch is not None:
                batches.add_case(batch, case)
            if claim:
                claim.remember(case=case)
        return None, case


class CaseDetail(ApiView):
    @extend_schema(operation_id="cases_retrieve", responses={200: CaseSerializer, **errors()})
    def get(self, request, case_id):
        case = get_object_or_404(_with_images(access.visible_cases(request.user)), pk=case_id)
        self.audit(Action.VIEW_CASE, case)
        return Response(CaseSerializer(case_payload(request, case)).data)

    @extend_schema(operation_id="cases_destroy", responses={204: None, **errors(), 403: OpenApiResponse(
        ErrorSerializer, description="A teammate's case: only its uploader or an administrator "
                                     "deletes it (or a session without a CSRF token).")})
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
