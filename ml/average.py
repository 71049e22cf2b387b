"""Average the weights of several model files into one model file.

    python -m ml.average runs/lite0-512/averaged.safetensors runs/lite0-512/epochs/epoch-0[4-6].safetensors

The last few epochs of a run sit near one another on the loss surface; their mean often
generalises better than any one of them (Izmailov et al. 2018, "Averaging weights leads to wider
optima"). So do runs warm-started from one model (a "model soup", Wortsman et al. 2022); runs
from different starts do not, and their mean is no model at all.

Floating-point tensors, batch-norm statistics included, are the plain mean; integer tensors
(batch norm's step counters) are taken from the last file. The files must share the encoder,
the resolution, the head and the input contrast; the result records which files it averaged
and has no operating point until ``ml.evaluate --set-operating-point`` chooses one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from safetensors.torch import load_file

from ml.core.checkpoint import CheckpointError, ModelInfo, read_info, save_model
from ml.core.model import PneumothoraxNet


def average_model_files(sources: list[str | Path], target: str | Path) -> ModelInfo:
    """Write the mean of ``sources``' weights to ``target``; its ModelInfo (with the version)."""
    if len(sources) < 2:
        raise CheckpointError("Averaging needs at least two model files")
    infos = [read_info(path) for path in sources]
    shapes = {(info.encoder, info.image_size, info.head_pooling, info.input_contrast) for info in infos}
    if len(shapes) != 1:
        raise CheckpointError("The model files differ in encoder, resolution, head or input contrast: "
                              f"{sorted(shapes)}")
    states = [load_file(str(path)) for path in sources]
    averaged = {}
    for key, last in states[-1].items():
        if last.is_floating_point():
            averaged[key] = torch.stack([state[key].float() for state in states]).mean(dim=0)
        else:
            averaged[key] = last
    first = infos[0]
    model = PneumothoraxNet(first.encoder, first.head_pooling)
    model.load_state_dict(averaged, strict=True)
    info = ModelInfo(encoder=first.encoder, image_size=first.image_size, head_pooling=first.head_pooling,
                     input_contrast=first.input_contrast,
                     training={**infos[-1].training,
                               "averaged": [{"file": Path(path).name, "version": info.version}
                                            for path, info in zip(sources, infos)]})
    return save_model(target, model, info)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="the .safetensors model file to write")
    parser.add_argument("sources", nargs="+", help="two or more model files of one run, or of runs warm-started from one model")
    args = parser.parse_args(argv)
    info = average_model_files(args.sources, args.target)
    print(f"wrote {args.target}: {info.version}, the mean of {len(args.sources)} model files")


if __name__ == "__main__":
    main()
