"""The ``torch`` backend: eager PyTorch in fp32, the reference (the operating point was chosen
with it)."""

from __future__ import annotations

import numpy as np
import torch


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
        return to_numpy(mask_logits), to_numpy(image_logits)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().float().cpu().numpy()
