"""Inference backends (ml.serving.backends): ONNX Runtime and bf16 against eager fp32 on real
shared images with the shipped model, one forward pass for a batch (flip TTA included), the
default rule, and what the commands say when the ONNX file is missing.

The shipped model is exported to ONNX once per session (``python -m ml.export --onnx``, about
20 s on 2 cores, longer under load); the ONNX tests skip where onnxruntime, onnx or onnxscript
is not installed."""

from __future__ import annotations

import csv
import os
import shutil

import numpy as np
import pytest
import torch

from ml.core.checkpoint import CheckpointError, read_info
from ml.core.hardware import cpu_supports_bf16
from ml.core.reading import XRay, read_xray
from ml.serving.backends import choice
from ml.serving.backends import BackendUnavailable, OnnxBackend, default_backend, resolve_backend
from ml.serving.inference import DEFAULT_MODEL_PATH, Predictor
from tests.support.data import subset_image


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    """Dice of two masks; None where both are empty."""
    a, b = a > 0, b > 0
    total = int(a.sum() + b.sum())
    return None if total == 0 else 2 * float((a & b).sum()) / total


@pytest.fixture(scope="session")
def shipped_model():
    if not DEFAULT_MODEL_PATH.is_file():
        pytest.skip(f"no shipped model at {DEFAULT_MODEL_PATH}")
    return DEFAULT_MODEL_PATH


@pytest.fixture(scope="session")
def onnx_model(shipped_model, tmp_path_factory):
    """The shipped model exported once per session, by ``ml.predict --backend onnx`` finding no
    export next to the model file (issue 20: it exports it, as a worker does, instead of
    stopping); the tests below reuse it."""
    for module in ("onnxruntime", "onnx", "onnxscript"):
        pytest.importorskip(module)
    from ml import predict

    folder = tmp_path_factory.mktemp("onnx")
    model = folder / "pneumothorax-unet.safetensors"
    model.symlink_to(shipped_model)
    assert "PNEUMOTHORAX_ONNX_MODEL" not in os.environ
    assert predict.main(["--input", str(subset_image("png")), "--out", str(folder / "out"),
                         "--model", str(model), "--backend", "onnx", "--threads", "2", "--quiet"]) == 0
    path = folder / "pneumothorax-unet.onnx"
    assert path.is_file()
    return path


@pytest.fixture(scope="module")
def images(shared_data, labels, pick) -> list[XRay]:
    """8 shared images: positives (3 DICOM, 2 PNG, 1 JPEG) and 2 DICOM negatives."""
    rows = (pick(labels, ".dcm", True, 3) + pick(labels, ".png", True, 2) + pick(labels, ".jpg", True, 1)
            + pick(labels, ".dcm", False, 2))
    assert len(rows) == 8
    return [read_xray(shared_data / row["image"]) for row in rows]


@pytest.fixture(scope="module")
def fp32(shipped_model):
    return Predictor(shipped_model, backend="torch", threads=2)


@pytest.fixture(scope="module")
def reference(fp32, images):
    answers = fp32.predict_batch(images)
    # The comparisons below must compare real outlines, not only empty masks.
    assert sum(a.mask.any() for a in answers) >= 4
    return answers


def compare(answers, reference, probability_within: float, min_dice: float) -> None:
    for n, (a, b) in enumerate(zip(answers, reference)):
        assert abs(a.probability - b.probability) <= probability_within, n
        assert a.positive == b.positive, n  # the same yes/no call on every image
        score = dice(a.mask, b.mask)
        assert score is None or score >= min_dice, (n, score)


def test_onnx_runtime_matches_torch_fp32(shipped_model, onnx_model, images, reference, fp32):
    predictor = Predictor(shipped_model, backend="onnx", onnx_model=onnx_model, threads=2)
    assert predictor.model is None  # ONNX Runtime runs it: the torch network is not loaded
    answers = predictor.predict_batch(images)
    assert {a.backend for a in answers} == {"onnx"} and {a.backend for a in reference} == {"torch"}
    compare(answers, reference, probability_within=1e-3, min_dice=0.99)
    # The raw logits too, on a dynamic batch of 3 (the export's example had 2).
    size = read_info(shipped_model).image_size  # the network's input size, whichever model ships
    batch = np.random.default_rng(0).standard_normal((3, 1, size, size)).astype(np.float32)
    for ours, theirs in zip(predictor.backend.run(batch), fp32.backend.run(batch)):
        assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 1e-3


def test_bf16_matches_fp32(shipped_model, images, reference):
    predictor = Predictor(shipped_model, backend="torch-bf16", threads=2)
    assert predictor.backend.dtype == torch.bfloat16 and predictor.backend.fp32_layers and predictor.backend.folded
    answers = predictor.predict_batch(images)
    assert {a.backend for a in answers} == {"torch-bf16"}
    compare(answers, reference, probability_within=2e-2, min_dice=0.98)


def test_predict_batch_is_predict_per_image(fp32, images, reference):
    for xray, batched in zip(images, reference):
        alone = fp32.predict(xray)
        assert alone.probability == pytest.approx(batched.probability, abs=1e-5)
        assert alone.positive == batched.positive and alone.backend == batched.backend
        score = dice(alone.mask, batched.mask)
        assert score is None or score >= 0.999
        assert alone.area_fraction == pytest.approx(batched.area_fraction, abs=1e-4)


@pytest.mark.parametrize("name", ["torch", "torch-bf16", "onnx"])
def test_flip_tta_in_one_forward_pass_with_every_backend(name, shipped_model, request, images):
    """TTA = the mean of the image's maps and the mirrored image's maps mirrored back, with the
    mirrored copies in the same forward pass as the images (one call of the backend, 2N)."""
    onnx = request.getfixturevalue("onnx_model") if name == "onnx" else None
    tta = Predictor(shipped_model, backend=name, onnx_model=onnx, flip_tta=True, threads=2)
    plain = Predictor(shipped_model, backend=name, onnx_model=onnx, flip_tta=False, threads=2)
    xrays = images[:2]
    calls = []
    run = tta.backend.run
    tta.backend.run = lambda batch: calls.append(batch.shape) or run(batch)
    maps, heads = tta.probability_maps(xrays)
    size = read_info(shipped_model).image_size
    assert calls == [(4, 1, size, size)]
    mirrored = [XRay(np.ascontiguousarray(x.pixels[:, ::-1]), x.source_format) for x in xrays]
    straight, straight_heads = plain.probability_maps(xrays)
    flipped, flipped_heads = plain.probability_maps(mirrored)
    tolerance = 1e-3 if name == "torch-bf16" else 1e-4  # batch 2 against batch 4 (0.0 measured)
    np.testing.assert_allclose(maps, (straight + flipped[..., ::-1]) / 2, atol=tolerance)
    np.testing.assert_allclose(heads, (straight_heads + flipped_heads) / 2, atol=tolerance)


def test_default_backend_follows_its_rule(monkeypatch, tmp_path):
    model = tmp_path / "model.safetensors"
    model.touch()
    monkeypatch.delenv("PNEUMOTHORAX_ONNX_MODEL", raising=False)
    monkeypatch.setattr(choice, "onnxruntime_available", lambda: True)
    # 1. a GPU: bf16/fp16 autocast, whatever the CPU
    monkeypatch.setattr(choice, "cpu_supports_bf16", lambda: False)
    assert default_backend("cuda", model) == "torch-bf16"
    # 2. native bf16 on the CPU
    monkeypatch.setattr(choice, "cpu_supports_bf16", lambda: True)
    assert default_backend("cpu", model) == "torch-bf16"
    # 3. no native bf16: onnx only with onnxruntime and the model's ONNX file present
    monkeypatch.setattr(choice, "cpu_supports_bf16", lambda: False)
    assert default_backend("cpu", model) == "torch"
    (tmp_path / "model.onnx").touch()  # next to the model file, same stem
    assert default_backend("cpu", model) == "onnx"
    assert resolve_backend("auto", "cpu", model) == resolve_backend("", "cpu", model) == "onnx"
    monkeypatch.setattr(choice, "onnxruntime_available", lambda: False)
    assert default_backend("cpu", model) == "torch"
    monkeypatch.setattr(choice, "onnxruntime_available", lambda: True)
    # ...or where PNEUMOTHORAX_ONNX_MODEL / onnx_model say
    monkeypatch.setenv("PNEUMOTHORAX_ONNX_MODEL", str(tmp_path / "elsewhere.onnx"))
    assert default_backend("cpu", model) == "torch"
    (tmp_path / "elsewhere.onnx").touch()
    assert default_backend("cpu", model) == "onnx"
    assert default_backend("cpu", model, onnx_model=tmp_path / "missing.onnx") == "torch"
    with pytest.raises(ValueError, match="torch-bf16"):
        resolve_backend("tensorrt", "cpu", model)


def test_default_backend_on_this_machine_reads_the_training_check():
    from ml.training.runtime import cpu_supports_bf16 as training_check

    assert training_check is cpu_supports_bf16  # one check for ml.train --precision auto and serving
    if cpu_supports_bf16():
        assert default_backend() == "torch-bf16"
    else:
        assert default_backend() in ("onnx", "torch")


def test_predictor_defaults_to_eager_fp32_and_auto_is_the_default_backend(shipped_model):
    assert Predictor(shipped_model).backend_name == "torch"
    assert Predictor(shipped_model, backend="auto").backend_name == default_backend("cpu", shipped_model)


def test_unexportable_or_foreign_onnx_file_is_refused_with_the_command(shipped_model, onnx_model,
                                                                      tmp_path, capsys):
    unwritable = tmp_path / "a-file"
    unwritable.write_bytes(b"")
    missing = unwritable / "missing.onnx"  # cannot be exported there: its folder is a file
    with pytest.raises(CheckpointError, match="python -m ml.export --onnx"):
        Predictor(shipped_model, backend="onnx", onnx_model=missing)
    with pytest.raises(BackendUnavailable, match="exported from model"):
        OnnxBackend(onnx_model, version="unet-another-model")
    from ml import predict

    image = tmp_path / "in.png"
    image.write_bytes(b"not read: the model does not load")
    assert predict.main(["--input", str(image), "--out", str(tmp_path / "out"), "--backend", "onnx",
                         "--onnx-model", str(missing), "--quiet"]) == 2
    assert "python -m ml.export --onnx" in capsys.readouterr().err


def test_the_onnx_export_is_reused_by_predict_and_the_worker_and_stale_ones_are_seen(
        onnx_model, tmp_path, settings):
    """One function (ensure_onnx_export) for ml.predict and the worker: the session's export is
    current, so neither exports again; an export of another model version or of another model
    file (its sha256) is stale."""
    import onnx

    from ml.core.checkpoint import read_info
    from ml.serving.backends import ONNX_SHA256_KEY, ensure_onnx_export, model_sha256, onnx_is_current
    from workers import model as worker_model

    model = onnx_model.with_suffix(".safetensors")
    version, sha256 = read_info(model).version, model_sha256(model)
    exported = onnx_model.stat().st_mtime_ns
    assert ensure_onnx_export(model) == onnx_model
    settings.PNEUMOTHORAX_MODEL, settings.INFERENCE_BACKEND = str(model), "onnx"
    assert worker_model.check_model() is None  # the worker's start-up check, on the same file
    assert onnx_model.stat().st_mtime_ns == exported  # neither exported it again
    assert onnx_is_current(onnx_model, version, sha256)
    assert not onnx_is_current(onnx_model, "unet-another-model", sha256)
    other = onnx.load(str(onnx_model))  # the same export, said to come from another model file
    for prop in other.metadata_props:
        if prop.key == ONNX_SHA256_KEY:
            prop.value = "0" * 64
    onnx.save(other, str(tmp_path / "other.onnx"))
    assert not onnx_is_current(tmp_path / "other.onnx", version, sha256)
    shutil.copy(onnx_model, tmp_path / "half.onnx")
    with open(tmp_path / "half.onnx", "r+b") as handle:
        handle.truncate(1000)  # an export cut short is not current either
    assert not onnx_is_current(tmp_path / "half.onnx", version, sha256)


def test_ml_predict_with_the_onnx_file_next_to_the_model(shipped_model, onnx_model, shared_data, labels,
                                                         pick, tmp_path):
    """The onnx backend finds ``<stem>.onnx`` beside the model file; the CSV says which backend."""
    from ml import predict

    (tmp_path / "model.safetensors").symlink_to(shipped_model)
    (tmp_path / "model.onnx").symlink_to(onnx_model)
    row = pick(labels, ".png", True)[0]
    out = tmp_path / "out"
    assert predict.main(["--input", str(shared_data / row["image"]), "--out", str(out),
                         "--model", str(tmp_path / "model.safetensors"), "--backend", "onnx",
                         "--threads", "2", "--quiet"]) == 0
    with open(out / "predictions.csv", newline="") as handle:
        (result,) = list(csv.DictReader(handle))
    assert result["backend"] == "onnx" and not result["error"]
    expected = Predictor(shipped_model, backend="torch", threads=2).predict(shared_data / row["image"])
    assert float(result["probability"]) == pytest.approx(expected.probability, abs=1e-3)
