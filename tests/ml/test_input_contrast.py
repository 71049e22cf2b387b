"""The model's contrast step (ml.core.contrast): recorded in the model file, applied in training
and in serving alike, inherited by a warm start."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from ml.core.checkpoint import FORMAT, CheckpointError, read_info, update_metadata
from ml.core.contrast import apply_input_contrast, network_pixels
from ml.core.reading import XRay

from conftest import TINY_SIZE


def low_contrast_film(size: int = TINY_SIZE) -> np.ndarray:
    """A dim, flat film with a faint structure: what CLAHE is for."""
    rows = np.linspace(90, 110, size, dtype=np.float32)[:, None]
    columns = 6 * np.sin(np.linspace(0, 12, size, dtype=np.float32))[None, :]
    return np.clip(rows + columns, 0, 255).astype(np.uint8)


def with_contrast(source, target, contrast: str):
    shutil.copy(source, target)
    info = read_info(target)
    info.input_contrast = contrast
    update_metadata(target, info)
    return target


def test_clahe_spreads_a_flat_films_grey_levels_and_none_leaves_it():
    film = low_contrast_film()
    assert apply_input_contrast(film, "none") is film
    equalised = apply_input_contrast(film, "clahe")
    assert equalised.dtype == np.uint8 and equalised.shape == film.shape
    assert equalised.std() > 1.2 * film.std() and np.ptp(equalised) > np.ptp(film)
    assert network_pixels(np.kron(film, np.ones((4, 4), np.uint8)), TINY_SIZE, "none").shape == film.shape
    with pytest.raises(ValueError, match="clahe"):
        apply_input_contrast(film, "sharpen")


def test_the_model_file_records_its_contrast_and_older_files_read_none(tiny_model, tmp_path):
    assert read_info(tiny_model).input_contrast == "none"
    clahe = with_contrast(tiny_model, tmp_path / "clahe.safetensors", "clahe")
    assert read_info(clahe).input_contrast == "clahe"
    # a file written before the field existed: its metadata has no such key
    older = tmp_path / "older.safetensors"
    info = json.loads(read_info_metadata(tiny_model))
    info.pop("input_contrast")
    save_file(load_file(str(tiny_model)), str(older),
              metadata={"format": FORMAT, "info": json.dumps(info)})
    assert read_info(older).input_contrast == "none"


def read_info_metadata(path) -> str:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()["info"]


def test_the_predictor_applies_the_model_files_contrast(tiny_model, tmp_path):
    from ml.serving.inference import Predictor

    film = low_contrast_film()  # at the model's size: the resize leaves it as it is
    clahe_model = Predictor(with_contrast(tiny_model, tmp_path / "clahe.safetensors", "clahe"), flip_tta=False)
    plain_model = Predictor(tiny_model, flip_tta=False)
    maps, probabilities = clahe_model.probability_maps([XRay(film, "png")])
    # the same weights without the step, given the film already equalised: the same answer
    expected_maps, expected = plain_model.probability_maps([XRay(apply_input_contrast(film, "clahe"), "png")])
    np.testing.assert_allclose(maps, expected_maps, atol=1e-6)
    np.testing.assert_allclose(probabilities, expected, atol=1e-6)
    raw_maps, _ = plain_model.probability_maps([XRay(film, "png")])
    assert np.abs(raw_maps - maps).max() > 1e-4  # and the step changes what the network sees


def test_training_records_the_contrast_and_a_warm_start_inherits_it(tiny_cache, tmp_path):
    from ml import train
    from ml.average import average_model_files

    first = train.main(["--cache", str(tiny_cache), "--out", str(tmp_path / "first"), "--encoder",
                        "tf_efficientnet_lite0", "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.5",
                        "--input-contrast", "clahe", "--quiet"])
    info = read_info(first)
    assert info.input_contrast == "clahe" and info.training["config"]["input_contrast"] == "clahe"
    assert read_info(tmp_path / "first" / "epochs" / "epoch-01.safetensors").input_contrast == "clahe"
    second = train.main(["--cache", str(tiny_cache), "--out", str(tmp_path / "second"), "--init", str(first),
                         "--epochs", "1", "--batch-size", "4", "--val-fraction", "0.5", "--quiet"])
    assert read_info(second).input_contrast == "clahe"
    averaged = average_model_files([first, second], tmp_path / "averaged.safetensors")
    assert averaged.input_contrast == "clahe"


def test_averaging_refuses_files_of_different_contrast(tiny_model, tmp_path):
    from ml.average import average_model_files

    clahe = with_contrast(tiny_model, tmp_path / "clahe.safetensors", "clahe")
    with pytest.raises(CheckpointError, match="input contrast"):
        average_model_files([tiny_model, clahe], tmp_path / "mixed.safetensors")
