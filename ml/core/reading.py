"""Read a chest X-ray from bytes (DICOM, PNG or JPEG) into one 8-bit greyscale pipeline.

Every format ends up as the same thing, an ``XRay`` with ``uint8`` pixels, so that the model
never sees a difference between formats other than the image content. That matters for this
data: most positives are JPEG re-encodes and most negatives are DICOM originals (see the data
README), and a reader that treated them differently would hand the model a shortcut.

The format is detected from the bytes (magic numbers), never from the file name.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from ml.core import limits
from ml.core.errors import (
    CorruptImage,
    EmptyFile,
    ImageDimensionsRejected,
    MultiFrameImage,
    NoPixelData,
    NotChestRadiograph,
    UnsupportedFormat,
)
from ml.core.pixels import dicom_to_uint8, rescale_to_uint8

MAX_SIDE = limits.MAX_SIDE  # why this size: ml.core.limits
MIN_SIDE = 64
MAX_PIXELS = MAX_SIDE * MAX_SIDE

# Modalities that can hold a projection radiograph. Anything else named in the header
# (CT, MR, US, ...) is refused: the model was never trained on it.
RADIOGRAPH_MODALITIES = {"CR", "DX", "DR", "RG", "OT", "PX", ""}

# DICOM header fields that are worth showing in the case record. Patient identity is kept out
# of this dict on purpose; de-identification of stored files is the web app's job.
DICOM_DISPLAY_FIELDS = (
    "Modality",
    "StudyDate",
    "StudyDescription",
    "SeriesDescription",
    "ViewPosition",
    "PatientOrientation",  # which way the rows run: the side of a finding (ml.serving.findings)
    "BodyPartExamined",
    "PatientSex",
    "PatientAge",
    "Manufacturer",
    "InstitutionName",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)


@dataclass(frozen=True)
class XRay:
    pixels: np.ndarray  # (H, W) uint8, 0 = black (air), 255 = white (bone)
    source_format: str  # "dicom" | "png" | "jpeg"
    pixel_spacing_mm: tuple[float, float] | None = None  # (row, column) spacing
    metadata: dict = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def detect_format(data: bytes) -> str:
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if len(data) >= 132 and data[128:132] == b"DICM":
        return "dicom"
    raise UnsupportedFormat(
        "Not a DICOM, PNG or JPEG file (the content was checked, not the file name)."
    )


def read_xray(source: bytes | str | Path) -> XRay:
    """Read one X-ray from bytes or a path. Raises a subclass of ``ml.core.errors.XRayError``.

    The cheap checks of ``ml.core.limits`` (size, JPEG scans, inflated size) run before any
    decoding; an untrusted file is read through ``ml.core.bounded`` (memory and time limits)."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise EmptyFile("The file is empty.")
    kind = detect_format(data)
    if kind == "dicom":
        return _read_dicom(data)
    if kind == "jpeg":
        limits.check_jpeg_scans(data)
    return _read_raster(data, kind)


def _check_dimensions(height: int, width: int) -> None:
    if height > MAX_SIDE or width > MAX_SIDE or height * width > MAX_PIXELS:
        raise ImageDimensionsRejected(
            f"Image dimensions {width} x {height} are larger than any chest X-ray "
            f"(limit {MAX_SIDE} px a side)."
        )
    if height < MIN_SIDE or width < MIN_SIDE:
        raise ImageDimensionsRejected(
            f"Image dimensions {width} x {height} are too small for a chest X-ray "
            f"(at least {MIN_SIDE} px a side)."
        )


def _read_raster(data: bytes, kind: str) -> XRay:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            # Check the declared size before decoding anything: a 100k x 100k PNG is a few
            # hundred bytes on disk and tens of GB in memory.
            _check_dimensions(image.height, image.width)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDimensionsRejected(f"Image dimensions are implausibly large: {exc}") from exc
    except ImageDimensionsRejected:
        raise
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError... on bad data
        raise CorruptImage(f"The {kind.upper()} file is damaged or truncated ({exc}).") from exc
    return XRay(pixels=_to_uint8_grey(image), source_format=kind)


def _to_uint8_grey(image: Image.Image) -> np.ndarray:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return rescale_to_uint8(np.asarray(image))
    if image.mode != "L":
        # RGB, RGBA, palette, LA, CMYK: luminance is what a radiograph shows.
        image = image.convert("L")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


_PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian


def _read_dicom(data: bytes) -> XRay:
    import pydicom
    from pydicom.errors import InvalidDicomError

    data = limits.inflate_dicom(data)  # Deflated: inflated within a bound, not by pydicom
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # truncation is reported below
            dataset = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError) as exc:
        raise CorruptImage(f"The DICOM file is damaged or truncated ({exc}).") from exc
    except Exception as exc:  # pydicom can raise many types on hostile headers
        raise CorruptImage(f"The DICOM header cannot be read ({exc}).") from exc

    modality = str(dataset.get("Modality", "") or "").upper()
    if modality not in RADIOGRAPH_MODALITIES:
        raise NotChestRadiograph(
            f"This DICOM is a {modality} study; only chest radiographs (CR/DX) are supported."
        )
    if "PixelData" not in dataset:
        if _PIXEL_DATA_TAG in data:
            # pydicom stops quietly (a warning) at a cut-off element: the pixel data was there
            raise CorruptImage("The DICOM file is truncated: its pixel data is cut off.")
        raise NoPixelData("The DICOM file has no pixel data (it holds no image).")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise MultiFrameImage(
            f"The DICOM file holds {frames} frames; a single chest radiograph is expected."
        )
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    _check_dimensions(rows, columns)

    _check_compressed_stream_ends(dataset)
    syntax = str(getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", "") or "")
    if limits.is_sos_syntax(syntax):  # JPEG in encapsulated pixel data: its scans, before decoding
        limits.check_jpeg_scans(dataset.PixelData, what="DICOM's JPEG")
    try:
        raw = dataset.pixel_array
    except Exception as exc:
        raise CorruptImage(f"The DICOM pixel data cannot be decoded ({exc}).") from exc
    if raw.ndim == 3 and raw.shape[-1] in (3, 4):  # colour (RGB / YBR): take luminance
        raw = np.asarray(Image.fromarray(raw[..., :3].astype(np.uint8)).convert("L"))
    if raw.ndim != 2:
        raise MultiFrameImage("The DICOM pixel data is not a single 2-D image.")

    pixels = dicom_to_uint8(dataset, raw)
    return XRay(
        pixels=pixels,
        source_format="dicom",
        pixel_spacing_mm=_pixel_spacing(dataset),
        metadata={
            name: str(dataset.get(name)) for name in DICOM_DISPLAY_FIELDS if dataset.get(name)
        },
    )


# JPEG, JPEG-LS and JPEG 2000 code streams end with an end-of-image marker (FFD9; in JPEG 2000
# the end-of-codestream marker has the same value). A stream cut short still decodes, into a
# partly grey film that the model would read as if it were whole: it is refused instead.
_END_OF_IMAGE_SYNTAXES = ("1.2.840.10008.1.2.4.5", "1.2.840.10008.1.2.4.7",
                          "1.2.840.10008.1.2.4.8", "1.2.840.10008.1.2.4.9")


def _check_compressed_stream_ends(dataset) -> None:
    from pydicom.encaps import generate_fragments

    syntax = str(getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", "") or "")
    if not syntax.startswith(_END_OF_IMAGE_SYNTAXES):
        return
    try:
        fragments = list(generate_fragments(dataset.PixelData))
    except Exception as exc:  # a damaged item structure
        raise CorruptImage(f"The DICOM pixel data is damaged ({exc}).") from exc
    if not fragments or not bytes(fragments[-1]).rstrip(b"\x00").endswith(b"\xff\xd9"):
        raise CorruptImage("The DICOM file is truncated: its compressed pixel data stops before "
                           "the end of the image.")


def _pixel_spacing(dataset) -> tuple[float, float] | None:
    for name in ("PixelSpacing", "ImagerPixelSpacing"):
        value = dataset.get(name)
        if value is None:
            continue
        try:
            row, column = float(value[0]), float(value[1])
        except (TypeError, ValueError, IndexError):
            continue
        if row > 0 and column > 0:
            return (row, column)
    return None
