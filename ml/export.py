"""Export a run's training state (``last.pt``) as a model file, e.g. to evaluate where a run
ended rather than its best epoch.

    python -m ml.export runs/lite0-256/last.pt runs/lite0-256/last.safetensors
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ml.checkpoint import ModelInfo, save_model
from ml.model import PneumothoraxNet


def export_training_state(state_path: str | Path, model_path: str | Path) -> ModelInfo:
    saved = torch.load(state_path, map_location="cpu", weights_only=False)
    config, history = saved["config"], saved["state"]["history"]
    model = PneumothoraxNet(config["encoder"])
    model.load_state_dict(saved["model"])
    info = ModelInfo(encoder=config["encoder"], image_size=int(config["image_size"]),
                     training={"config": config, "epoch": len(history),
                               "validation": history[-1] if history else {}})
    return save_model(model_path, model, info)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("state", help="a run's last.pt")
    parser.add_argument("model", help="the .safetensors model file to write")
    args = parser.parse_args(argv)
    info = export_training_state(args.state, args.model)
    print(f"wrote {args.model}: {info.version}, epoch {info.training['epoch']}")


if __name__ == "__main__":
    main()
