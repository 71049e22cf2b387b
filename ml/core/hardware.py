"""What the CPU this process runs on can do, for choosing a precision (training) and an
inference backend (serving). Shared by both, so that ``ml.train --precision auto`` and
``ml.serving.backends.default_backend()`` read the machine the same way."""

from __future__ import annotations

import torch


def cpu_supports_bf16() -> bool:
    """Native bf16 matmuls through oneDNN (AVX-512 BF16 or AMX). Without them bf16 autocast
    is emulated and slower than fp32."""
    try:
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False
