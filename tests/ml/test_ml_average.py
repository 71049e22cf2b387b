"""python -m ml.average: the mean of a run's model files."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from ml import average
from ml.core.checkpoint import CheckpointError, ModelInfo, load_model, read_info, save_model
from ml.core.model import PneumothoraxNet


def _model_file(path, seed: int, encoder="tf_efficientnet_lite0", image_size=64):
    torch.manual_seed(seed)
    model = PneumothoraxNet(encoder, "avg")
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    save_model(path, model, ModelInfo(encoder=encoder, image_size=image_size, training={"epoch": seed}))
    return path


def test_average_is_the_mean_of_the_floating_tensors(tmp_path):
    first, second, third = (_model_file(tmp_path / f"epoch-{i}.safetensors", i) for i in (1, 2, 3))
    target = tmp_path / "averaged.safetensors"
    average.main([str(target), str(first), str(second), str(third)])
    states = [load_file(str(path)) for path in (first, second, third)]
    averaged = load_file(str(target))
    for key, value in averaged.items():
        if value.is_floating_point():
            expected = torch.stack([state[key].float() for state in states]).mean(dim=0)
            # stored as fp16, like every model file
            assert torch.allclose(value.float(), expected, atol=2e-3), key
        else:
            assert torch.equal(value, states[-1][key]), key
    info = read_info(target)
    assert [entry["file"] for entry in info.training["averaged"]] == [p.name for p in (first, second, third)]
    assert info.version not in {read_info(p).version for p in (first, second, third)}
    model, _ = load_model(target)  # loads strictly, ready for ml.evaluate
    assert isinstance(model, PneumothoraxNet)


def test_average_refuses_files_of_different_models(tmp_path):
    small = _model_file(tmp_path / "a.safetensors", 1, image_size=64)
    large = _model_file(tmp_path / "b.safetensors", 2, image_size=128)
    with pytest.raises(CheckpointError, match="differ"):
        average.average_model_files([small, large], tmp_path / "out.safetensors")
    with pytest.raises(CheckpointError, match="at least two"):
        average.average_model_files([small], tmp_path / "out.safetensors")
