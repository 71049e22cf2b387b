"""Which backend: the names, and ``default_backend()`` (what ``auto`` means), the fastest the machine
supports, by this rule:

1. CUDA device: ``torch-bf16`` (autocast is the fast path on any recent GPU; its parity with fp32
   is tested on CPU only, where no GPU is lent);
2. a CPU with native bf16 (``ml.core.hardware.cpu_supports_bf16``, the check that
   ``ml.train --precision auto`` uses): ``torch-bf16``;
3. else ``onnx`` where onnxruntime is installed and the model's ONNX file is present (``auto``
   does not start an export of tens of seconds by itself; ``--backend onnx`` does);
4. else ``torch``."""

from __future__ import annotations

from pathlib import Path

import torch

from ml.core.hardware import cpu_supports_bf16
from ml.serving.backends.onnx_files import onnx_path_for, onnxruntime_available

BACKENDS = ("torch", "torch-bf16", "onnx")
AUTO = "auto"


def default_backend(device: str | torch.device = "cpu", model_path: str | Path | None = None,
                    onnx_model: str | Path | None = None) -> str:
    """The fastest backend this machine supports, by the rule in this module's docstring."""
    if torch.device(device).type == "cuda":
        return "torch-bf16"
    if cpu_supports_bf16():
        return "torch-bf16"
    if (onnxruntime_available() and model_path is not None
            and onnx_path_for(model_path, onnx_model).is_file()):
        return "onnx"
    return "torch"


def resolve_backend(name: str | None, device: str | torch.device = "cpu",
                    model_path: str | Path | None = None, onnx_model: str | Path | None = None) -> str:
    """``auto`` (or empty) -> ``default_backend()``; a known name as it is; else ValueError."""
    if not name or name == AUTO:
        return default_backend(device, model_path, onnx_model)
    if name not in BACKENDS:
        raise ValueError(f"Unknown inference backend {name!r}: one of {', '.join(BACKENDS)} or {AUTO}")
    return name
