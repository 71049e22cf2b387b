"""Renderers for the file endpoints: they pass the file's bytes through. They exist so that
content negotiation accepts ``Accept: image/png`` (or DICOM, JPEG) and so the schema names each
endpoint's media types; errors are JSON whatever was asked for (``views.files``)."""

from rest_framework.renderers import BaseRenderer


class BinaryRenderer(BaseRenderer):
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else b""


class PNGRenderer(BinaryRenderer):
    media_type, format = "image/png", "png"


class DicomRenderer(BinaryRenderer):
    media_type, format = "application/dicom", "dcm"


class JPEGRenderer(BinaryRenderer):
    media_type, format = "image/jpeg", "jpg"
