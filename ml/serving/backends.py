"""How the network is run: one interface, three backends, one switch.

    backend = make_backend("onnx", model_path, info, threads=2)
    mask_logits, image_logits = backend.run(batch)   # (N, C, S, S) float32 -> (N, 1, S, S), (N,)

``batch`` is what ``ml.core.model.to_input_tensor`` makes, stacked: normalised float32 with the
channels the model takes (one grey channel for every model file of this project), at the model
file's resolution. The outputs are float32 logits, as the PyTorch model returns them.

Backends:
- ``torch``: eager PyTorch in fp32; the reference (the operating point was chosen with it).
- ``torch-bf16``: channels-last memory layout and autocast. On CPU in bf16 (fast only with
  native bf16: AVX-512 BF16 or AMX; elsewhere oneDNN emulates it and it is slower than fp32);
  on CUDA in bf16 where the GPU has it, else fp16. The encoder's stem and first two blocks (the
  1/2 and 1/4 resolution stages, ``FP32_LAYERS``) stay in fp32: rounding the grey input and
  those first features to bf16 is what moved the mask (measured on 12 shared positives with
  the shipped model: all-bf16 mask Dice against fp32 down to 0.92, pixel probabilities off by
  up to 0.49; with these layers in fp32 Dice >= 0.99, off by <= 0.07). Inside those fp32 layers
  each batch norm is folded into the convolution before it (exact in fp32; on the backend's own
  copy of the network): a pass over the largest feature maps less per layer, which wins back
  most of what the fp32 layers cost.
- ``onnx``: ONNX Runtime, CPUExecutionProvider, ``ORT_ENABLE_ALL`` graph optimisation, the
  intra-op threads of the thread setting. It reads an ``.onnx`` file exported from the model
  file (``python -m ml.export --onnx MODEL.safetensors MODEL.onnx``) that records the model
  version it was exported from; a file from another model is refused, never served.

``default_backend()`` (what ``auto`` means) is the fastest the machine supports, by this rule:
1. CUDA device: ``torch-bf16`` (autocast is the fast path on any recent GPU; its parity with
   fp32 is tested on CPU only, where no GPU is lent);
2. a CPU with native bf16 (``ml.core.hardware.cpu_supports_bf16``, the check that
   ``ml.train --precision auto`` uses): ``torch-bf16``;
3. else ``onnx`` where onnxruntime is installed and the model's ONNX file is present;
4. else ``torch``.

Where the ONNX file is: ``onnx_model`` if given, else ``PNEUMOTHORAX_ONNX_MODEL``, else next to
the model file with the same stem (``pneumothorax-unet.safetensors`` ->
``pneumothorax-unet.onnx``). No ``.onnx`` is kept in git (21 MB of fp32 weights, derived from the
11 MB model file): it is built by ``ml.export --onnx``, by a worker that is told to use it
(``INFERENCE_BACKEND=onnx``) at start-up, and by the tests.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import logging
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ml.core.checkpoint import CheckpointError, ModelInfo, load_model, read_info
from ml.core.hardware import cpu_supports_bf16

BACKENDS = ("torch", "torch-bf16", "onnx")
AUTO = "auto"
# Run in fp32 inside the bf16 backend (paths in PneumothoraxNet; those a model lacks are skipped):
# timm's EfficientNet(-Lite) stem and its first two blocks, lukemelas' (B3) stem.
FP32_LAYERS = ("unet.encoder.conv_stem", "unet.encoder.bn1", "unet.encoder.blocks.0",
               "unet.encoder.blocks.1", "unet.encoder._conv_stem", "unet.encoder._bn0")
ONNX_OPSET = 18
ONNX_INPUT = "image"
ONNX_OUTPUTS = ("mask_logits", "image_logits")
ONNX_VERSION_KEY = "pneumothorax_model_version"
# ORT's graph optimisation levels, by the names the benchmark and the options use.
ORT_LEVELS = {"disable": "ORT_DISABLE_ALL", "basic": "ORT_ENABLE_BASIC",
              "extended": "ORT_ENABLE_EXTENDED", "all": "ORT_ENABLE_ALL"}


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


class TorchBackend:
    """Eager PyTorch, fp32."""

    name = "torch"

    def __init__(self, model: torch.nn.Module, device: torch.device):
        self.model, self.device = model.eval(), torch.device(device)

    def _input(self, batch: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(self.device)

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask_logits, image_logits = self.model(self._input(batch))
        return _numpy(mask_logits), _numpy(image_logits)


class TorchBf16Backend(TorchBackend):
    """Channels-last and autocast: bf16 on CPU, bf16 or fp16 on CUDA. Logits come back in fp32."""

    name = "torch-bf16"

    def __init__(self, model: torch.nn.Module, device: torch.device,
                 fp32_layers: tuple[str, ...] = FP32_LAYERS, fold_batch_norms: bool = True):
        model = copy.deepcopy(model).eval()  # the caller's network stays as it was
        # Only inside the fp32 layers, where folding is exact: folded into the bf16 layers it
        # moved the masks (Dice against fp32 down to 0.974 on the 16 shared positives).
        self.folded = (fold_batch_norms_into_convolutions(model, within=fp32_layers)
                       if fold_batch_norms and fp32_layers else 0)
        super().__init__(model.to(memory_format=torch.channels_last), device)
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            self.dtype = torch.float16
        else:
            self.dtype = torch.bfloat16
        modules = dict(self.model.named_modules())
        self.fp32_layers = tuple(name for name in fp32_layers if name in modules)
        for name in self.fp32_layers:
            _run_in_fp32(modules[name], self.device.type)

    @torch.inference_mode()
    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = self._input(batch).contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=self.dtype):
            mask_logits, image_logits = self.model(images)
        return _numpy(mask_logits), _numpy(image_logits)


class OnnxBackend:
    """ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(self, onnx_path: str | Path, version: str | None = None, threads: int | None = None,
                 optimization: str = "all", model_path: str | Path | None = None):
        if not onnxruntime_available():
            raise BackendUnavailable("The onnx backend needs onnxruntime (pip install onnxruntime); "
                                     "or choose the torch or torch-bf16 backend.")
        import onnxruntime as ort

        onnx_path = Path(onnx_path)
        if not onnx_path.is_file():
            source = model_path or "MODEL.safetensors"
            raise BackendUnavailable(
                f"No ONNX model at {onnx_path}. Export it from the model file: "
                f"{export_command(source, onnx_path)} (or set PNEUMOTHORAX_ONNX_MODEL / "
                "--onnx-model to where it is).")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or 0)  # 0: ORT's default (one per core)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, ORT_LEVELS[optimization])
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BackendUnavailable(f"{onnx_path} is not a readable ONNX model ({exc})") from exc
        self.path, self.optimization = onnx_path, optimization
        self.exported_from = self.session.get_modelmeta().custom_metadata_map.get(ONNX_VERSION_KEY, "")
        if version is not None and self.exported_from != version:
            raise BackendUnavailable(
                f"{onnx_path} was exported from model {self.exported_from or 'unknown'}, not from "
                f"{version}: export it again ({export_command(model_path or 'MODEL.safetensors', onnx_path)}).")

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mask_logits, image_logits = self.session.run(
            list(ONNX_OUTPUTS), {ONNX_INPUT: np.ascontiguousarray(batch, dtype=np.float32)})
        return mask_logits, image_logits


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
        return OnnxBackend(onnx_path_for(model_path, onnx_model), info.version, threads,
                           model_path=model_path)
    if model is None:
        model, _ = load_model(model_path, device)
    return TorchBf16Backend(model, device) if name == "torch-bf16" else TorchBackend(model, device)


def export_onnx(model_path: str | Path, onnx_path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Write the model file's network as ONNX: fp32, a dynamic batch axis, the model file's
    resolution, and the model version in the metadata (``pneumothorax_model_version``).
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
        ONNX_VERSION_KEY: info.version, "pneumothorax_image_size": str(size),
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


def onnx_is_current(onnx_path: str | Path, version: str) -> bool:
    """The ONNX file exists and was exported from this model version."""
    try:
        return OnnxBackend(onnx_path, version, threads=1, optimization="disable").exported_from == version
    except BackendUnavailable:
        return False


def fold_batch_norms_into_convolutions(model: torch.nn.Module, size: int = 64,
                                       within: tuple[str, ...] | None = None) -> int:
    """Fold every eval-mode batch norm that reads a convolution's output straight into that
    convolution's weights and bias; the norm keeps only what follows it (timm's BatchNormAct2d:
    its activation). Pairs are found by data flow (one forward pass of a small zero image, the
    norm's input being the convolution's output object), not by names. Returns how many."""
    convolutions, norms, outputs, handles = {}, [], [], []
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            def after(module, inputs, output, name=name):
                outputs.append(output)  # kept alive, so that no two outputs share an id
                convolutions[id(output)] = name
            handles.append(module.register_forward_hook(after))
        elif isinstance(module, nn.BatchNorm2d) and not module.training:
            def before(module, inputs, name=name):
                norms.append((name, inputs[0]))  # kept alive too: ids are compared below
            handles.append(module.register_forward_pre_hook(before))
    channels = next(m for m in model.modules() if isinstance(m, nn.Conv2d)).in_channels
    try:
        with torch.no_grad():
            model(torch.zeros(1, channels, size, size, device=next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    modules = dict(model.named_modules())
    folded = 0
    for norm_name, source in norms:
        conv_name = convolutions.get(id(source))
        if conv_name is None or (within is not None and not any(
                name == prefix or name.startswith(prefix + ".")
                for name in (conv_name, norm_name) for prefix in within)):
            continue
        conv, norm = modules[conv_name], modules[norm_name]
        _set_module(model, conv_name, fuse_conv_bn_eval(conv, norm))
        rest = [m for m in (getattr(norm, "drop", None), getattr(norm, "act", None)) if m is not None]
        _set_module(model, norm_name, nn.Sequential(*rest) if rest else nn.Identity())
        folded += 1
    return folded


def _set_module(model: torch.nn.Module, name: str, module: torch.nn.Module) -> None:
    parent, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, child, module)


def _run_in_fp32(module: torch.nn.Module, device_type: str) -> None:
    """This module instance runs outside autocast, in fp32 (its state dict is unchanged)."""
    forward = module.forward

    def fp32_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type, enabled=False):
            return forward(x.float())

    module.forward = fp32_forward


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()


__all__ = ["BACKENDS", "AUTO", "BackendUnavailable", "TorchBackend", "TorchBf16Backend", "OnnxBackend",
           "default_backend", "resolve_backend", "make_backend", "export_onnx", "onnx_path_for",
           "onnx_is_current", "onnxruntime_available", "cpu_supports_bf16"]
