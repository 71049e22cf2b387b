"""Where the ``onnx`` backend's file is and whether it is current. The ``.onnx`` is derived from
the model file (``onnx_export``), never kept in git (21 MB of fp32 weights from the 11 MB model
file). It records, in its metadata, the model version and the model file's sha256 it was exported
from: an export of another model, or of another file under the same version, is stale."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from ml.core.checkpoint import CheckpointError

ONNX_OPSET = 18
ONNX_INPUT = "image"
ONNX_OUTPUTS = ("mask_logits", "image_logits")
ONNX_VERSION_KEY = "pneumothorax_model_version"
ONNX_SHA256_KEY = "pneumothorax_model_sha256"
NO_ONNXRUNTIME = ("The onnx backend needs onnxruntime (pip install onnxruntime); or choose the "
                  "torch or torch-bf16 backend.")


class BackendUnavailable(CheckpointError):
    """The backend asked for cannot run here (no onnxruntime, no ONNX file, a stale one).
    A CheckpointError: what refuses a missing model file refuses this too, with its reason."""


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def onnx_path_for(model_path: str | Path, onnx_model: str | Path | None = None) -> Path:
    """``onnx_model``, else ``PNEUMOTHORAX_ONNX_MODEL``, else the model file's stem + ``.onnx``."""
    explicit = onnx_model or os.environ.get("PNEUMOTHORAX_ONNX_MODEL")
    return Path(explicit) if explicit else Path(model_path).with_suffix(".onnx")


def export_command(model_path: str | Path, onnx_path: str | Path) -> str:
    return f"python -m ml.export --onnx {model_path} {onnx_path}"


def model_sha256(model_path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(model_path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def onnx_metadata(onnx_path: str | Path) -> dict[str, str] | None:
    """The ONNX file's custom metadata; None if it is missing or not a readable ONNX model."""
    import onnxruntime as ort

    if not Path(onnx_path).is_file():
        return None
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime raises its own exception types: half a file, not ONNX
        return None
    return dict(session.get_modelmeta().custom_metadata_map)


def onnx_is_current(onnx_path: str | Path, version: str, sha256: str | None = None) -> bool:
    """The ONNX file exists and was exported from this model version (and, with ``sha256``,
    from the model file with that digest)."""
    metadata = onnx_metadata(onnx_path)
    return (metadata is not None and metadata.get(ONNX_VERSION_KEY) == version
            and (sha256 is None or metadata.get(ONNX_SHA256_KEY) == sha256))
