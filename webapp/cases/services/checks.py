"""The one check of an X-ray file's content, for every way a file comes in (the upload page, the
REST API, STOW-RS and the DICOM listener, through ``uploads.validate_upload``) and for the worker
that reads the stored copy again (``pipeline``): the same rules everywhere, written once.

The file is read in a child process within XRAY_DECODE_MEMORY_MB and XRAY_DECODE_TIME_S
(``ml.core.bounded``), after the cheap checks on its bytes (``ml.core.limits``: the size a side,
JPEG scans, a Deflated DICOM's inflated size); a DICOM that names a non-frontal view is refused
(``projection``). Every refusal is an ``XRayError`` whose message a clinician can read."""

from __future__ import annotations

from collections.abc import Mapping

from django.conf import settings

from ml.core.bounded import DecodeLimits, read_xray_bounded
from ml.core.reading import XRay
from webapp.cases.services.projection import check_frontal


def decode_limits() -> DecodeLimits:
    return DecodeLimits(memory_mb=settings.XRAY_DECODE_MEMORY_MB,
                        time_s=settings.XRAY_DECODE_TIME_S,
                        concurrency=settings.XRAY_DECODE_CONCURRENCY)


def read_checked(data: bytes, recorded: Mapping | None = None) -> XRay:
    """The X-ray in ``data``, read within the limits and checked. ``recorded``: header fields
    read earlier (an image's metadata from its upload), checked too, in case the file lost them."""
    xray = read_xray_bounded(data, decode_limits())
    check_frontal(xray.metadata)  # a lateral film read as frontal gives a meaningless answer
    if recorded:
        check_frontal(recorded)
    return xray
