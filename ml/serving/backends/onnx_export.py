"""Exporting the model file as ONNX for the ``onnx`` backend, once: ``ensure_onnx_export`` is what
``ml.predict --backend onnx`` (through ``make_backend``) and a worker on ``INFERENCE_BACKEND=onnx``
(at start-up, before its pool forks) both call. The export is cached where ``onnx_path_for`` says
(next to the model file, or ``PNEUMOTHORAX_ONNX_MODEL`` / ``--onnx-model``) and redone when it is
missing or stale (another model version or model file: ``onnx_files``). Concurrent callers (a
worker and a command) export it once: the second waits on a lock beside the file and finds it
current. ``python -m ml.export --onnx`` exports unconditionally."""

from __future__ import annotations

import contextlib
import fcntl
import io
import logging
import os
import tempfile
from pathlib import Path

import torch

from ml.core.checkpoint import ModelInfo, load_model, read_info
from ml.serving.backends.onnx_files import (ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUTS, ONNX_SHA256_KEY,
                                            ONNX_VERSION_KEY, NO_ONNXRUNTIME, BackendUnavailable,
                                            export_command, model_sha256, onnx_is_current,
                                            onnx_path_for, onnxruntime_available)

log = logging.getLogger(__name__)


def ensure_onnx_export(model_path: str | Path, onnx_model: str | Path | None = None,
                       info: ModelInfo | None = None) -> Path:
    """The path of a current ONNX export of the model file, exporting it first if it is missing
    or stale (tens of seconds). BackendUnavailable, with the command to run, if it cannot be."""
    if not onnxruntime_available():
        raise BackendUnavailable(NO_ONNXRUNTIME)
    info = info or read_info(model_path)
    onnx_path, sha256 = onnx_path_for(model_path, onnx_model), model_sha256(model_path)
    if onnx_is_current(onnx_path, info.version, sha256):
        return onnx_path
    try:
        onnx_path.parent.mkdir(parents=True, exist_ok=True)
        with open(onnx_path.with_name(onnx_path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be exporting it right now
            if not onnx_is_current(onnx_path, info.version, sha256):
                log.warning("no current ONNX export of %s at %s: exporting it now (once; tens of "
                            "seconds)", info.version, onnx_path)
                export_onnx(model_path, onnx_path)
    except Exception as exc:  # no onnx/onnxscript, a read-only folder, an exporter error
        raise BackendUnavailable(
            f"No current ONNX model of {info.version} at {onnx_path}, and exporting it failed "
            f"({type(exc).__name__}: {exc}). Run {export_command(model_path, onnx_path)}, or set "
            "PNEUMOTHORAX_ONNX_MODEL / --onnx-model to a writable place.") from exc
    return onnx_path


def export_onnx(model_path: str | Path, onnx_path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Write the model file's network as ONNX: fp32, a dynamic batch axis, the model file's
    resolution, and the model version and file digest in the metadata (``onnx_files``).
    Written to a temporary file and moved into place, so a reader never sees half a file.
    Needs ``onnx`` and ``onnxscript`` (the torch.export-based exporter)."""
    model, info = load_model(model_path, "cpu")
    onnx_path = Path(onnx_path)
    onnx_path.parent.mkdir(parents=True, exist_ok=True)
    size = info.image_size
    example = torch.zeros(2, 1, size, size)  # 2, not 1: torch.export specialises a size-1 axis
    batch = torch.export.Dim("batch", min=1, max=1024)
    # The exporter prints its steps and its optimiser logs every pass at INFO: a worker's log
    # at start-up should say one line (the caller's), not a hundred.
    quiet = [logging.getLogger(name) for name in ("onnx_ir", "onnxscript", "torch.onnx")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.WARNING)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            program = torch.onnx.export(model, (example,), input_names=[ONNX_INPUT],
                                        output_names=list(ONNX_OUTPUTS), dynamic_shapes=({0: batch},),
                                        opset_version=opset, dynamo=True, optimize=True,
                                        external_data=False, verbose=False)
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
    program.model.metadata_props.update({
        ONNX_VERSION_KEY: info.version, ONNX_SHA256_KEY: model_sha256(model_path),
        "pneumothorax_image_size": str(size),
        "pneumothorax_encoder": info.encoder})
    handle, temporary = tempfile.mkstemp(suffix=".onnx.part", dir=onnx_path.parent)
    os.close(handle)
    try:
        program.save(temporary)
        os.replace(temporary, onnx_path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return onnx_path
