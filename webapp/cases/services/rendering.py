"""PNG renderings of an X-ray and its result, with numpy and Pillow only (no torch, no cv2), so
the web process can make previews too."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

TINT_RGB = np.array([255, 48, 48], dtype=np.float32)  # red wash inside the mask
OUTLINE_RGB = np.array([255, 220, 0], dtype=np.uint8)  # yellow edge: visible on bone and air
TINT_ALPHA = 0.35
# Fast PNG compression: these files are a few MB at most and latency matters more than size.
PNG_COMPRESS_LEVEL = 3


def encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


def preview_png(pixels: np.ndarray) -> bytes:
    """The X-ray as the model saw it (8-bit grey): what a browser can show, even for DICOM."""
    return encode_png(Image.fromarray(np.ascontiguousarray(pixels), mode="L"))


def mask_png(mask: np.ndarray) -> bytes:
    """The mask at the image's size, 0 or 255."""
    return encode_png(Image.fromarray(np.where(mask > 0, 255, 0).astype(np.uint8), mode="L"))


def outline(mask: np.ndarray, width: int) -> np.ndarray:
    """Boolean edge of the mask, ``width`` pixels thick, inside the mask."""
    inside = mask > 0
    eroded = Image.fromarray(inside.astype(np.uint8) * 255, mode="L").filter(
        ImageFilter.MinFilter(2 * width + 1))
    return inside & (np.asarray(eroded) == 0)


def overlay_rgb(pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
    rgb = np.repeat(pixels[..., None], 3, axis=2)
    inside = mask > 0
    if inside.any():
        rgb = rgb.astype(np.float32)
        rgb[inside] = rgb[inside] * (1 - TINT_ALPHA) + TINT_RGB * TINT_ALPHA
        rgb = rgb.astype(np.uint8)
        # About 3 px on a 1024 px image, so the outline survives the browser's downscaling.
        rgb[outline(mask, width=max(1, round(min(mask.shape) / 340)))] = OUTLINE_RGB
    return rgb


def overlay_png(pixels: np.ndarray, mask: np.ndarray) -> bytes:
    return encode_png(Image.fromarray(overlay_rgb(pixels, mask), mode="RGB"))
