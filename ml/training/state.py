"""The training state file (``last.pt``, torch pickle): model, optimiser, EMA, schedule, history
and the run's config.

Written every epoch and every ``--checkpoint-minutes`` (atomically: a run killed mid-write keeps
its previous state); read to resume a run, to start a second stage from it (``--init``), or to
export where a run ended as a model file (``ml.export``). It never leaves the run folder; what
ships is the model file of ``ml.core.checkpoint``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ml.core.checkpoint import ModelInfo, load_model, save_model
from ml.core.model import PneumothoraxNet


def save_training_state(path: Path, saved: dict) -> None:
    temporary = path.with_suffix(".tmp")
    torch.save(saved, temporary)
    os.replace(temporary, path)


def load_training_state(path: str | Path, device: str | torch.device = "cpu") -> dict:
    # weights_only=False: the state holds the optimiser's and the schedule's plain objects; the
    # file is this project's own, written by save_training_state in a run folder.
    return torch.load(path, map_location=device, weights_only=False)


def initial_weights(path: str, encoder: str) -> dict:
    """Weights to start from: a model file (.safetensors) or another run's ``last.pt``."""
    if str(path).endswith(".pt"):
        saved = load_training_state(path)
        found = saved["config"]["encoder"]
        weights = saved["model"]
    else:
        initial, info = load_model(path)
        found, weights = info.encoder, initial.state_dict()
    if found != encoder:
        raise SystemExit(f"--init {path} has encoder {found}, not {encoder}")
    return weights


def export_training_state(state_path: str | Path, model_path: str | Path) -> ModelInfo:
    """The model of a training state as a model file, with the config and last validation row."""
    saved = load_training_state(state_path)
    config, history = saved["config"], saved["state"]["history"]
    info = model_info_of_config(config, training={"config": config, "epoch": len(history),
                                                  "validation": history[-1] if history else {}})
    model = PneumothoraxNet(info.encoder, info.head_pooling)
    model.load_state_dict(saved["model"])
    return save_model(model_path, model, info)


def model_info_of_config(config: dict, training: dict) -> ModelInfo:
    """The ModelInfo a run's recorded config describes. Runs older than --head-pooling trained
    the average-pooled head; runs older than --input-contrast fed the films as they were."""
    return ModelInfo(encoder=config["encoder"], image_size=int(config["image_size"]),
                     head_pooling=config.get("head_pooling") or "avg",
                     input_contrast=config.get("input_contrast") or "none", training=training)
