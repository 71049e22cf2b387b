"""Typed errors for images the product cannot read.

Every error carries a message that can be shown to a clinician as it is: callers catch
``XRayError`` and display ``str(error)``.
"""


class XRayError(ValueError):
    """Base class: this file cannot be used as a chest X-ray."""


class EmptyFile(XRayError):
    pass


class UnsupportedFormat(XRayError):
    pass


class CorruptImage(XRayError):
    pass


class NoPixelData(XRayError):
    pass


class MultiFrameImage(XRayError):
    pass


class ImageDimensionsRejected(XRayError):
    pass


class NotChestRadiograph(XRayError):
    pass


class DecodeLimitExceeded(XRayError):
    """Reading the file would take more memory or time than any chest X-ray needs (a file built
    to exhaust the server: ml.core.limits, ml.core.bounded)."""
