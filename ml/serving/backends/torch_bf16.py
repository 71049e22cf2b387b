"""The ``torch-bf16`` backend: channels-last memory layout and autocast. On CPU in bf16 (fast only
with native bf16: AVX-512 BF16 or AMX; elsewhere oneDNN emulates it and it is slower than fp32);
on CUDA in bf16 where the GPU has it, else fp16. The encoder's stem and first two blocks (the 1/2
and 1/4 resolution stages, ``FP32_LAYERS``) stay in fp32: rounding the grey input and those first
features to bf16 is what moved the mask (measured on 12 shared positives with the shipped model:
all-bf16 mask Dice against fp32 down to 0.92, pixel probabilities off by up to 0.49; with these
layers in fp32 Dice >= 0.99, off by <= 0.07). Inside those fp32 layers each batch norm is folded
into the convolution before it (exact in fp32; on the backend's own copy of the network): a pass
over the largest feature maps less per layer, which wins back most of what the fp32 layers
cost."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ml.serving.backends.torch_fp32 import TorchBackend, to_numpy

# Run in fp32 inside the bf16 backend (paths in PneumothoraxNet; those a model lacks are skipped):
# timm's EfficientNet(-Lite) stem and its first two blocks, lukemelas' (B3) stem.
FP32_LAYERS = ("unet.encoder.conv_stem", "unet.encoder.bn1", "unet.encoder.blocks.0",
               "unet.encoder.blocks.1", "unet.encoder._conv_stem", "unet.encoder._bn0")


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
        return to_numpy(mask_logits), to_numpy(image_logits)


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


