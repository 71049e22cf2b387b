"""/api/v1/batches/: open a batch (then POST each case with ``batch=<id>``), list them, follow
one's progress."""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.response import Response

from webapp.api import batches, idempotency
from webapp.api.errors import errors
from webapp.api.payloads import batch_payload
from webapp.api.serializers import BatchCreateSerializer, BatchPageSerializer, BatchSerializer
from webapp.api.views.base import ApiView
from webapp.audit.models import Action


class BatchListCreate(ApiView):
    @extend_schema(operation_id="batches_list",
                   parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
                   responses={200: BatchPageSerializer, **errors()})
    def get(self, request):
        page = self.paginator.paginate_queryset(
            batches.visible_batches(request.user).order_by("-created_at", "pk"), request, view=self)
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
        form = BatchCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        claim = idempotency.begin(request, "batch",
                                  fields={k: str(v) for k, v in form.validated_data.items()})
        record = claim.previous() if claim else None
        if record is not None:
            self.audit(Action.VIEW_CASE, record.batch, replay=True)
            return idempotency.replay(BatchSerializer(batch_payload(request, record.batch)).data)
        batch = form.save(owner=request.user)
        if claim:
            claim.remember(batch=batch)
        self.audit(Action.UPLOAD, batch, label=batch.label, expected_cases=batch.expected_cases)
        return Response(BatchSerializer(batch_payload(request, batch)).data, status=http.HTTP_201_CREATED)


class BatchDetail(ApiView):
    @extend_schema(operation_id="batches_retrieve", responses={200: BatchSerializer, **errors()})
    def get(self, request, batch_id):
        batch = get_object_or_404(batches.visible_batches(request.user), pk=batch_id)
        self.audit(Action.VIEW_CASE, batch)
        return Response(BatchSerializer(batch_payload(request, batch)).data)
