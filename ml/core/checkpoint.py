"""Saving and loading models.

Two kinds of file:
- the *training state* (``last.pt``, torch pickle): model, optimiser, schedule, history; for
  resuming a run. It never leaves the run folder.
- the *model file* (``.safetensors``): fp16 weights plus JSON metadata (the architecture, the
  resolution it was trained at, the operating point chosen on validation data, the figures it
  scored). This is what ships and what the predictor loads; safetensors cannot run code.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from ml.core.decision import OperatingPoint
from ml.core.model import PneumothoraxNet

FORMAT = "pneumothorax-triage/1"


@dataclass
class ModelInfo:
    encoder: str
    image_size: int
    version: str = ""
    operating_point: OperatingPoint = field(default_factory=OperatingPoint)
    training: dict = field(default_factory=dict)
    evaluation: dict = field(default_factory=dict)
    head_pooling: str = "avg"  # files written before crops were trained have no such key
    input_contrast: str = "none"  # ml.core.contrast; files written before it have no such key


class CheckpointError(RuntimeError):
    pass


def save_model(path: str | Path, model: PneumothoraxNet, info: ModelInfo) -> ModelInfo:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu", torch.float16 if v.is_floating_point() else v.dtype).contiguous()
               for k, v in _unwrap(model).state_dict().items()}
    digest = hashlib.sha256()
    for key in sorted(tensors):
        digest.update(key.encode())
        digest.update(tensors[key].numpy().tobytes())
    info.version = f"unet-{info.encoder}-{info.image_size}px-{digest.hexdigest()[:10]}"
    save_file(tensors, str(path), metadata=_metadata(info))
    return info


def update_metadata(path: str | Path, info: ModelInfo) -> None:
    """Rewrite the metadata (e.g. a newly chosen operating point) keeping the weights."""
    tensors = load_file(str(path))
    save_file(tensors, str(path), metadata=_metadata(info))


def read_info(path: str | Path) -> ModelInfo:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as exc:
        raise CheckpointError(f"{path} is not a readable safetensors model file ({exc})") from exc
    if metadata.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a {FORMAT} model file")
    body = json.loads(metadata["info"])
    body["operating_point"] = OperatingPoint(**body.get("operating_point", {}))
    return ModelInfo(**body)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[PneumothoraxNet, ModelInfo]:
    info = read_info(path)
    model = PneumothoraxNet(info.encoder, info.head_pooling)
    state = {k: v.float() if v.is_floating_point() else v for k, v in load_file(str(path)).items()}
    model.load_state_dict(state, strict=True)
    return model.to(device).eval(), info


def _metadata(info: ModelInfo) -> dict[str, str]:
    body = {
        "encoder": info.encoder,
        "image_size": info.image_size,
        "version": info.version,
        "operating_point": vars(info.operating_point),
        "training": info.training,
        "evaluation": info.evaluation,
        "head_pooling": info.head_pooling,
        "input_contrast": info.input_contrast,
    }
    return {"format": FORMAT, "info": json.dumps(body)}


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if hasattr(model, "module") else model
