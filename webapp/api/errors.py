"""The API's errors: one body shape for all of them, ``{"detail": ..., "errors": [...]}`` (and
``case`` on a reference conflict), the exceptions the views raise, and the error responses the
OpenAPI schema lists for each operation."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.db import connection, transaction
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework import status as http
from rest_framework.exceptions import APIException, ValidationError
from rest_framework.views import exception_handler as drf_exception_handler


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    errors = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="One reason per problem (e.g. per refused file).")
    case = serializers.UUIDField(required=False, help_text="The existing case, on a conflict.")


COMMON_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="No or invalid credentials."),
    403: OpenApiResponse(ErrorSerializer, description="Session without a CSRF token."),
    404: OpenApiResponse(ErrorSerializer, description="Not found, or not yours."),
    429: OpenApiResponse(ErrorSerializer, description="Too many requests; see Retry-After."),
}


def errors(*codes, **extra):
    """The schema's error responses of one operation: the common ones plus ``codes``."""
    responses = dict(COMMON_ERRORS)
    for code in codes:
        responses[code] = OpenApiResponse(ErrorSerializer)
    responses.update(extra)
    return responses


class Conflict(APIException):
    status_code = http.HTTP_409_CONFLICT
    default_detail = "Conflict."


class KeyReused(APIException):
    status_code = http.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = ("This Idempotency-Key was already used for a different request; "
                      "use a new key for a new request.")


def refused(messages: list[str]) -> ValidationError:
    """The upload service refused the files (400): nothing was stored."""
    return ValidationError({"detail": "The upload was refused; nothing was stored.",
                            "errors": messages})


def exception_handler(exc, context):
    """DRF's handler (settings REST_FRAMEWORK EXCEPTION_HANDLER), with one body shape for every
    error. Django refuses too many files or fields before the view runs: those become 400s with
    the reason, like the view's own."""
    if isinstance(exc, TooManyFilesSent):
        exc = ValidationError({"images": f"At most {settings.MAX_UPLOAD_FILES} files per case."})
    elif isinstance(exc, RequestDataTooBig):
        exc = ValidationError("The request's form fields are too large.")
    response = _without_foreign_rollback(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and set(data) <= {"detail", "errors", "case"} and "detail" in data:
        response.data = {k: (str(v) if k == "detail" else v) for k, v in data.items()}
    else:
        response.data = {"detail": "The request is not valid.", "errors": _flatten(data)}
    return response


def _without_foreign_rollback(exc, context):
    """DRF's handler marks any open transaction for rollback, taking it for the request's
    (ATOMIC_REQUESTS). A view that opted out (``non_atomic_requests``: the uploads, issue 21)
    has none: a transaction around it (a test's) is not the view's to end."""
    dispatch = getattr(context.get("view"), "dispatch", None)
    if not getattr(dispatch, "_non_atomic_requests", None) or not connection.in_atomic_block:
        return drf_exception_handler(exc, context)
    marked = connection.needs_rollback
    response = drf_exception_handler(exc, context)
    transaction.set_rollback(marked)
    return response


def _flatten(data, prefix="") -> list[str]:
    """Serializer errors as "field: message" lines (nested fields: "field: index: message")."""
    if isinstance(data, dict):
        return [m for key, value in data.items()
                for m in _flatten(value, f"{prefix}{key}: " if key != "non_field_errors" else prefix)]
    if isinstance(data, list):
        return [m for item in data for m in _flatten(item, prefix)]
    return [f"{prefix}{data}"]
