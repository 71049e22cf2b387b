"""Checking a model file before the registry accepts it: it loads as the workers load it, and its
declared version is the hash of its weights. Needs torch (the worker requirements): the web
process only reads the header (read_header), and leaves the full check to a worker."""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from pathlib import Path

# safetensors: an 8-byte little-endian header length, then that much JSON. A header this large is
# no model file of ours (ours is a few tens of kB); refusing it bounds what reading it costs.
MAX_HEADER_BYTES = 16 * 1024 * 1024


class ModelRejected(ValueError):
    """The file cannot be registered (or promoted); the message says why, in one line."""


@dataclass(frozen=True)
class CheckedModel:
    version: str
    encoder: str
    image_size: int
    sha256: str
    size_bytes: int
    test_figures: dict


def read_header(path: str | Path) -> dict:
    """The declared metadata (``ml.core.checkpoint``'s ``info``) from the safetensors header, in
    plain Python (no torch): what the web can say about an upload before a worker checks it."""
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8)
            if len(head) < 8:
                raise ModelRejected("not a safetensors file (shorter than its header)")
            (length,) = struct.unpack("<Q", head)
            if not 0 < length <= MAX_HEADER_BYTES:
                raise ModelRejected("not a safetensors file (implausible header length)")
            raw = handle.read(length)
    except OSError as exc:
        raise ModelRejected(f"cannot read the file ({exc.strerror or exc})") from exc
    if len(raw) < length:
        raise ModelRejected("the file is truncated (its header is incomplete)")
    try:
        metadata = json.loads(raw).get("__metadata__") or {}
        info = json.loads(metadata["info"])
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ModelRejected("not a model file written by ml.train (no model metadata)") from None
    if not isinstance(info, dict) or not info.get("version"):
        raise ModelRejected("the model metadata declares no version")
    return info


def weights_version(encoder: str, image_size: int, tensors: dict) -> str:
    """The version ml.core.checkpoint.save_model gives these weights: a SHA-256 over the sorted
    names and the stored (fp16) bytes. Recomputed here, so that a file whose metadata claims
    another model's version is caught."""
    digest = hashlib.sha256()
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(tensors[key].numpy().tobytes())
    return f"unet-{encoder}-{image_size}px-{digest.hexdigest()[:10]}"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def check_model_file(path: str | Path, *, max_bytes: int | None = None,
                     build: bool = True) -> CheckedModel:
    """The whole check, with torch: header, the network builds and its weights load (strictly,
    as ml.core.checkpoint.load_model does for the workers), and the declared version matches
    the weights. ModelRejected with the reason otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ModelRejected(f"no file at {path}")
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ModelRejected(f"the file is {size // 2**20} MB, over the {max_bytes // 2**20} MB limit")
    read_header(path)  # cheap refusals first, before torch reads anything
    from safetensors.torch import load_file

    from ml.core.checkpoint import CheckpointError, load_model, read_info
    from ml.core.model_card import held_out_figures

    try:
        info = read_info(path)
        if build:  # False only for the configured file, which every pool process loads anyway
            load_model(path, "cpu")  # builds the architecture, loads the state dict strictly
        tensors = load_file(str(path))
    except (CheckpointError, RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelRejected(f"the model does not load: {reason[:300]}") from exc
    actual = weights_version(info.encoder, info.image_size, tensors)
    if actual != info.version:
        raise ModelRejected(f"the declared version {info.version} does not match the weights "
                            f"(they are {actual})")
    return CheckedModel(version=info.version, encoder=info.encoder, image_size=info.image_size,
                        sha256=file_sha256(path), size_bytes=size,
                        test_figures=held_out_figures(info))
