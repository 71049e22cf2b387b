"""The bad-input corpus, generated here from the shared subset and from scratch (no binaries
are committed). Each entry: (file name, bytes, a fragment of the message the user must see)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from functools import lru_cache

import numpy as np
import pydicom
from PIL import Image

from tests.support.data import subset_image
from tests.support.dicom import dicom_bytes


@lru_cache(maxsize=None)
def real(extension: str) -> bytes:
    return subset_image(extension).read_bytes()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(side: int = 100_000) -> bytes:
    """A valid PNG header declaring side x side 8-bit grey (10 GB decoded) in ~200 bytes."""
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 4, 9)  # a few rows of zeros; the rest "to come"
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", rows)
            + png_chunk(b"IEND", b""))


def xray_pixels(side: int = 512) -> np.ndarray:
    grey = Image.open(io.BytesIO(real("png"))).convert("L").resize((side, side))
    return np.asarray(grey)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def synthetic_dicom(*, modality="CR", frames=1, bits=16, side=256, pixel_data=True) -> bytes:
    pixels = xray_pixels(side).astype(np.uint16 if bits == 16 else np.uint8)
    if bits == 16:
        pixels = pixels * 16  # 12-bit range in a 16-bit word, as detectors store it
    return dicom_bytes(np.stack([pixels] * frames) if frames > 1 else pixels, modality=modality,
                       frames=frames, pixel_data=pixel_data, PatientName="TEST^SYNTHETIC",
                       PatientID="SYN-1", PixelSpacing=[0.5, 0.5])


def dicom_without_pixel_data() -> bytes:
    dataset = pydicom.dcmread(io.BytesIO(real("dcm")))
    del dataset.PixelData
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def zip_bomb(uncompressed_mb: int = 20) -> bytes:
    """A ~20 KB zip that inflates to 20 MB. Archives are never unpacked: the upload takes single
    images and checks each one's content, so this must be refused as "not an image"."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("study/image.dcm", b"\x00" * uncompressed_mb * 1024 * 1024)
    return out.getvalue()


def refused() -> dict[str, tuple[str, bytes, str]]:
    """Refused at upload (HTTP 400 with the message); also failed with the reason if they ever
    reach a worker."""
    return {
        "empty": ("empty.png", b"", "empty"),
        "text_as_png": ("notes.png", b"patient notes: not an image\n" * 20, "Not a DICOM, PNG or JPEG"),
        "html_as_png": ("page.png", b"<!doctype html><html><script>alert(1)</script></html>",
                        "Not a DICOM, PNG or JPEG"),
        "truncated_png": ("cut.png", real("png")[: len(real("png")) // 3], "damaged or truncated"),
        "truncated_jpeg": ("cut.jpg", real("jpg")[: len(real("jpg")) // 3], "damaged or truncated"),
        "truncated_dicom": ("cut.dcm", real("dcm")[: len(real("dcm")) // 2], "truncated"),
        "dicom_without_pixels": ("nopixels.dcm", dicom_without_pixel_data(), "no pixel data"),
        "multiframe_dicom": ("multi.dcm", synthetic_dicom(frames=3), "3 frames"),
        "ct_dicom": ("ct.dcm", synthetic_dicom(modality="CT"), "CT study"),
        "png_bomb": ("bomb.png", png_bomb(), "large"),
        "tiny_png": ("tiny.png", encode(Image.new("L", (8, 8)), "PNG"), "too small"),
        "zip_bomb": ("batch.zip", zip_bomb(), "Not a DICOM, PNG or JPEG"),
        "zip_bomb_as_dicom": ("study.dcm", zip_bomb(), "Not a DICOM, PNG or JPEG"),
    }


def accepted() -> dict[str, tuple[str, bytes]]:
    """Unusual but valid: accepted, analysed, and completed."""
    rgb = Image.fromarray(xray_pixels()).convert("RGB")
    grey16 = Image.fromarray(xray_pixels().astype(np.uint16) * 257)  # mode I;16
    return {
        "rgb_png": ("rgb.png", encode(rgb, "PNG")),
        "rgb_jpeg": ("rgb.jpg", encode(rgb, "JPEG", quality=90)),
        "grey16_png": ("grey16.png", encode(grey16, "PNG")),
        "grey16_dicom": ("grey16.dcm", synthetic_dicom(bits=16)),
    }


HOSTILE_NAMES = {
    "unix_traversal": "../../../etc/passwd.png",
    "windows_path": "C:\\Windows\\System32\\evil.png",
    "nul": "inno\x00cent.png",
    "long_unicode": "é" * 300 + "😀" * 50 + ".png",
    "rtl_override": "gnp.\u202eexe.png",
    "only_dots": "...",
}
