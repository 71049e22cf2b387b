"""/api/v1/ itself (DRF's API root: where a client starts), and the answer to every other
/api/ path that names nothing: a JSON 404, never the site's HTML page, so a program that
mistypes a URL reads the same error body as for any other refusal (``webapp.api.errors``).

Both authenticate like every endpoint: anonymous callers get 401 JSON, even for a path that
does not exist (which paths exist is not told to strangers, as for another user's case)."""

from __future__ import annotations

from django.urls import Resolver404, resolve
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.routers import APIRootView
from rest_framework.schemas import DefaultSchema

from webapp.api.errors import errors
from webapp.api.views.base import ApiView


class JsonWhateverAccepted(BaseContentNegotiation):
    """JSON even to a browser's Accept: text/html (no browsable page, no 406 for a wrong URL)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class JsonOnly:
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonWhateverAccepted


class ApiRootSerializer(serializers.Serializer):
    cases = serializers.URLField(help_text="List cases (GET) and submit one (POST).")
    batches = serializers.URLField(help_text="Open a batch, list batches.")
    dicomweb_studies = serializers.URLField(help_text="DICOMweb STOW-RS: store DICOM instances.")
    schema = serializers.URLField(help_text="This API's OpenAPI 3 schema.")
    docs = serializers.URLField(help_text="The schema as a page (Swagger UI, for a browser).")


class ApiRoot(JsonOnly, APIRootView):
    """The entry points, by name (URL names of webapp.api.urls, reversed in its namespace)."""

    api_root_dict = {"cases": "case-list", "batches": "batch-list",
                     "dicomweb_studies": "dicomweb-studies", "schema": "schema", "docs": "docs"}
    schema = DefaultSchema()  # documented: DRF's root view leaves itself out of the schema

    @extend_schema(operation_id="api_root", summary="The API's entry points",
                   responses={200: ApiRootSerializer, **errors()})
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


@extend_schema(exclude=True)
class UnknownPath(JsonOnly, ApiView):
    """Every method of every /api/ path that names no endpoint: 404 JSON (401 when anonymous)."""

    def refuse(self, request, *args, **kwargs):
        path = request.path
        if not path.endswith("/") and _names_an_endpoint(path + "/"):
            raise NotFound(f"Not found. Did you mean {path}/ (with a final slash)?")
        raise NotFound("Not found. The API's entry points are listed at /api/v1/.")

    get = post = put = patch = delete = options = refuse


def _names_an_endpoint(path: str) -> bool:
    try:
        return resolve(path).func.view_class is not UnknownPath
    except (Resolver404, AttributeError):
        return False
