"""How the network is run: one interface, three backends, one switch.

    backend = make_backend("onnx", model_path, info, threads=2)
    mask_logits, image_logits = backend.run(batch)   # (N, C, S, S) float32 -> (N, 1, S, S), (N,)

``batch`` is what ``ml.core.model.to_input_tensor`` makes, stacked: normalised float32 with the
channels the model takes (one grey channel for every model file of this project), at the model
file's resolution. The outputs are float32 logits, as the PyTorch model returns them.

One module a backend: ``torch_fp32`` (``torch``, eager fp32, the reference), ``torch_bf16``
(``torch-bf16``, autocast with the first layers in fp32), ``onnx_runtime`` (``onnx``, ONNX Runtime
on the CPU, reading an export of the model file: ``onnx_export``, ``onnx_files``); ``choice``:
the names and ``default_backend()``, what ``auto`` means. Everything is importable from here.
"""

from __future__ import annotations

from pathlib import Path

import torch

from ml.core.checkpoint import ModelInfo, load_model, read_info
from ml.core.hardware import cpu_supports_bf16
from ml.serving.backends.choice import AUTO, BACKENDS, default_backend, resolve_backend
from ml.serving.backends.onnx_export import ensure_onnx_export, export_onnx
from ml.serving.backends.onnx_files import (ONNX_INPUT, ONNX_OPSET, ONNX_OUTPUTS, ONNX_SHA256_KEY,
                                            ONNX_VERSION_KEY, BackendUnavailable, export_command,
                                            model_sha256, onnx_is_current, onnx_path_for,
                                            onnxruntime_available)
from ml.serving.backends.onnx_runtime import ORT_LEVELS, OnnxBackend
from ml.serving.backends.torch_bf16 import (FP32_LAYERS, TorchBf16Backend,
                                            fold_batch_norms_into_convolutions)
from ml.serving.backends.torch_fp32 import TorchBackend


def make_backend(name: str, model_path: str | Path, info: ModelInfo | None = None,
                 device: str | torch.device = "cpu", threads: int | None = None,
                 onnx_model: str | Path | None = None, model: torch.nn.Module | None = None):
    """A backend by name (``auto`` resolved here) for the model file at ``model_path``; ``model``:
    the already loaded network, for the torch backends."""
    device = torch.device(device)
    name = resolve_backend(name, device, model_path, onnx_model)
    if name == "onnx":
        if device.type != "cpu":
            raise ValueError("The onnx backend runs on the CPU only; use torch-bf16 on a GPU.")
        info = info or read_info(model_path)
        onnx_path = ensure_onnx_export(model_path, onnx_model, info)  # exported once, if need be
        return OnnxBackend(onnx_path, info.version, threads, model_path=model_path)
    if model is None:
        model, _ = load_model(model_path, device)
    return TorchBf16Backend(model, device) if name == "torch-bf16" else TorchBackend(model, device)


__all__ = ["BACKENDS", "AUTO", "BackendUnavailable", "TorchBackend", "TorchBf16Backend", "OnnxBackend",
           "default_backend", "resolve_backend", "make_backend", "export_onnx", "ensure_onnx_export",
           "onnx_path_for", "onnx_is_current", "onnxruntime_available", "cpu_supports_bf16",
           "export_command", "model_sha256", "fold_batch_norms_into_convolutions", "FP32_LAYERS",
           "ONNX_INPUT", "ONNX_OPSET", "ONNX_OUTPUTS", "ONNX_SHA256_KEY", "ONNX_VERSION_KEY",
           "ORT_LEVELS"]
