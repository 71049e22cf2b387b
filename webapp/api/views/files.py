"""/api/v1/cases/<case>/images/<image>/<kind>/: one file of an image, served only to those who
may see the case (404 otherwise), through the same files service as the pages."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from webapp.api.errors import errors
from webapp.api.renderers import DicomRenderer, JPEGRenderer, PNGRenderer
from webapp.api.views.base import ApiView
from webapp.audit import services as audit
from webapp.cases.services import access, files, serving


class ImageFile(ApiView):
    kind = ""
    renderer_classes = [JSONRenderer, PNGRenderer]

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response):  # errors are JSON whatever the Accept header said
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    def get(self, request, case_id, image_id):
        image = access.get_visible_image(request.user, case_id, image_id)
        try:
            return serving.serve(request.user, image, self.kind, download=False,
                                 client_address=audit.client_address(request),
                                 detail=self.audit_detail())
        except files.NotAvailable as exc:
            raise NotFound(str(exc)) from exc


def _file_view(kind, media_type, description, renderers=(PNGRenderer,)):
    media_types = media_type.split()

    class View(ImageFile):
        renderer_classes = [JSONRenderer, *renderers]

        @extend_schema(operation_id=f"images_{kind.replace('-', '_')}", description=description,
                       responses={**{(200, t): OpenApiTypes.BINARY for t in media_types}, **errors()})
        def get(self, request, case_id, image_id):
            return super().get(request, case_id, image_id)

    View.kind = kind
    View.__name__ = View.__qualname__ = f"ImageFile_{kind.replace('-', '_')}"
    return View


OriginalFile = _file_view("original", "application/dicom image/png image/jpeg",
                          "The uploaded file (DICOM, de-identified on upload; PNG or JPEG).",
                          (DicomRenderer, PNGRenderer, JPEGRenderer))
PreviewFile = _file_view("preview", "image/png", "The X-ray as an 8-bit PNG.")
MaskFile = _file_view("mask", "image/png", "The result mask: PNG, the input's size, 0 or 255.")
OverlayFile = _file_view("overlay", "image/png", "The X-ray with the outline: PNG, the input's size.")
DicomSegFile = _file_view("dicom-seg", "application/dicom",
                          "DICOM Segmentation of the result (DICOM inputs only).", (DicomRenderer,))
DicomScFile = _file_view("dicom-sc", "application/dicom",
                         "DICOM Secondary Capture of the overlay (DICOM inputs only).", (DicomRenderer,))
DicomSrFile = _file_view("dicom-sr", "application/dicom",
                         "DICOM Structured Report (Comprehensive SR, TID 1500) of the result: the "
                         "finding, probability, area, rim depth and the findings in words; it "
                         "references the SEG (DICOM inputs only).", (DicomRenderer,))
