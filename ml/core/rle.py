"""Run-length encodings of the SIIM-ACR challenge.

Masks are flattened column-major (Fortran order), as the challenge's CSVs were written.
Two encodings exist:
- "relative" (stage 1): pairs of (gap since the end of the previous run, run length);
- "standard" (stage 2, the usual Kaggle RLE): pairs of (1-based start, run length).
"""

from __future__ import annotations

import numpy as np

EMPTY = "-1"


def decode(encoded: str, height: int = 1024, width: int = 1024, relative: bool = True) -> np.ndarray:
    """Decode one annotation row into a (height, width) uint8 mask of 0 and 255."""
    flat = np.zeros(height * width, dtype=np.uint8)
    encoded = (encoded or "").strip()
    if encoded in ("", EMPTY):
        return flat.reshape(width, height).T
    numbers = np.asarray([int(token) for token in encoded.split()], dtype=np.int64)
    if numbers.size % 2:
        raise ValueError("A run-length encoding needs an even count of numbers.")
    starts, lengths = numbers[0::2], numbers[1::2]
    if relative:
        # start of run k = sum of gaps and lengths before it, plus its own gap
        ends_before = np.concatenate([[0], np.cumsum(starts + lengths)[:-1]])
        starts = ends_before + starts
    else:
        starts = starts - 1
    if (starts < 0).any() or (starts + lengths > flat.size).any():
        raise ValueError("A run falls outside the image.")
    for start, length in zip(starts, lengths):
        flat[start : start + length] = 255
    return flat.reshape(width, height).T


def encode(mask: np.ndarray, relative: bool = True) -> str:
    """Encode a mask (non-zero = inside) in the challenge's column-major RLE."""
    flat = (np.asarray(mask).T.reshape(-1) > 0).astype(np.int8)
    if not flat.any():
        return EMPTY
    padded = np.concatenate([[0], flat, [0]])
    changes = np.flatnonzero(padded[1:] != padded[:-1])
    starts, ends = changes[0::2], changes[1::2]
    lengths = ends - starts
    if relative:
        previous_ends = np.concatenate([[0], ends[:-1]])
        firsts = starts - previous_ends
    else:
        firsts = starts + 1
    return " ".join(f"{a} {b}" for a, b in zip(firsts, lengths))


def merge_rows(rows: list[str], height: int = 1024, width: int = 1024, relative: bool = True) -> np.ndarray:
    """Merge all annotation rows of one image (one per pneumothorax instance) into one mask."""
    mask = np.zeros((height, width), dtype=np.uint8)
    for row in rows:
        mask |= decode(row, height, width, relative)
    return mask
