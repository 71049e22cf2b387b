"""8-bit greyscale from the pixel values a reader decoded (``ml.core.reading``): min..max
stretched to 0..255, and DICOM's modality and VOI transforms, without image-sized float64 copies
(issue 21: an 8192 x 8192 16-bit PNG took 2.4 GB that way)."""

from __future__ import annotations

import numpy as np

# Integer images with at most this many distinct levels (16-bit) are mapped through a lookup
# table: one small table and one index array, instead of float64 copies of the whole image
# (an 8192 x 8192 16-bit PNG took 2.4 GB that way; issue 21).
_LUT_LEVELS = 1 << 16


def rescale_to_uint8(array: np.ndarray) -> np.ndarray:
    """Stretch min..max to 0..255 (rounded), as (v - min) / (max - min) * 255 in float64 gives."""
    low, high = array.min(), array.max()
    if high <= low:
        return np.zeros(array.shape, dtype=np.uint8)
    if array.dtype.kind in "iu" and int(high) - int(low) < _LUT_LEVELS:
        return _stretch(np.arange(int(low), int(high) + 1, dtype=np.float64))[_lut_index(array, low)]
    # Floats (rare: mode F, float pixel data): float32, in place, one copy of the image.
    scaled = np.asarray(array, dtype=np.float32).copy()
    scaled -= np.float32(low)
    scaled *= np.float32(255.0 / (float(high) - float(low)))
    np.rint(scaled, out=scaled)
    np.clip(scaled, 0, 255, out=scaled)
    return scaled.astype(np.uint8)


def _stretch(values: np.ndarray, low=None, high=None) -> np.ndarray:
    """uint8 of small float64 table ``values`` stretched from low..high (default: its own)."""
    low = float(values.min()) if low is None else float(low)
    high = float(values.max()) if high is None else float(high)
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.clip(np.rint((values - low) / (high - low) * 255.0), 0, 255).astype(np.uint8)


def _lut_index(array: np.ndarray, low) -> np.ndarray:
    """``array - low`` as an index into a table starting at ``low``, in the narrowest dtype."""
    if array.dtype.kind == "u":
        return array - array.dtype.type(low)  # >= 0, fits in the same width
    index = array.astype(np.int32 if array.dtype.itemsize <= 4 else np.int64)
    index -= int(low)
    return index


def dicom_to_uint8(dataset, raw: np.ndarray) -> np.ndarray:
    """Modality LUT, then VOI LUT or window, then MONOCHROME1 inversion, as PS3.4 orders them.

    For integer pixels the transforms run on a table of the stored values (min..max, at most
    65,536 entries) rather than on the image: the same values as transforming every pixel in
    float64, without the image-sized float64 copies."""
    low, high = raw.min(), raw.max()
    if raw.dtype.kind in "iu" and int(high) - int(low) < _LUT_LEVELS:
        domain = np.arange(int(low), int(high) + 1).astype(raw.dtype)
        table = _dicom_table(dataset, domain)
        index = _lut_index(raw, low)
        if table is None:  # 8-bit, no transform: the stored values exactly
            pixels = raw.astype(np.uint8)
        elif _monotone(table):  # min and max over the image are those of the table's ends
            pixels = _stretch(table)[index]
        else:  # a non-monotone LUT: stretch over the values that occur
            present = np.zeros(table.shape, dtype=bool)
            present[index] = True
            pixels = _stretch(table, table[present].min(), table[present].max())[index]
    else:  # float pixel data, or 32-bit with a wider range: transformed as a whole (rare)
        table = _dicom_table(dataset, raw)
        pixels = raw.astype(np.uint8) if table is None else rescale_to_uint8(table)
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        pixels = 255 - pixels
    return np.ascontiguousarray(pixels)


def _dicom_table(dataset, values: np.ndarray):
    """The modality and VOI transforms of ``values`` as float64; None for 8-bit values that no
    transform changes (kept exactly, so that a DICOM and a JPEG export of it read the same)."""
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    transformed = apply_modality_lut(values, dataset)
    if "VOILUTSequence" in dataset or "WindowCenter" in dataset:
        return np.asarray(apply_voi_lut(transformed, dataset, index=0), dtype=np.float64)
    if values.dtype.itemsize == 1 and transformed is values:
        return None
    return np.asarray(transformed, dtype=np.float64)


def _monotone(table: np.ndarray) -> bool:
    steps = np.diff(table)
    return bool((steps >= 0).all() or (steps <= 0).all())
