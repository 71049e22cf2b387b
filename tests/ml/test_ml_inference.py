"""Predictor invariants and the model file's round trip."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from ml.core.checkpoint import CheckpointError, ModelInfo, load_model, read_info, save_model, update_metadata
from ml.core.decision import OperatingPoint
from ml.core.model import build_model
from ml.core.reading import XRay, read_xray
from ml.serving.inference import Predictor


@pytest.fixture(scope="module")
def xray(shared_data, labels, pick) -> XRay:
    return read_xray(shared_data / pick(labels, ".jpg", True)[0]["image"])


def forced(predictor: Predictor, xray: XRay) -> Predictor:
    """Set an operating point at which this image is positive with a half-full mask, so that
    the mask comparisons below compare real masks, not two empty ones."""
    maps, _ = predictor.probability_maps([xray])
    predictor.info.operating_point = OperatingPoint(float(np.median(maps[0])), 0.0, 0.0)
    return predictor


def test_missing_model_file(tmp_path):
    with pytest.raises(CheckpointError):
        Predictor(tmp_path / "nothing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a model")
    with pytest.raises(CheckpointError):
        Predictor(tmp_path / "junk.safetensors")


def test_mask_has_the_input_size(tiny_model, xray):
    predictor = forced(Predictor(tiny_model), xray)
    square = predictor.predict(xray)
    assert square.mask.shape == (1024, 1024) and square.mask.dtype == np.uint8
    assert set(np.unique(square.mask).tolist()) <= {0, 255} and square.positive
    assert square.area_fraction == pytest.approx((square.mask > 0).mean())
    wide = XRay(np.ascontiguousarray(xray.pixels[100:800, 50:950]), "png")
    assert predictor.predict(wide).mask.shape == (700, 900)
    buffer = io.BytesIO()
    Image.fromarray(xray.pixels[:600, :1000]).save(buffer, format="PNG")
    result = predictor.predict(buffer.getvalue())
    assert result.mask.shape == (600, 1000) and result.area_cm2 is None
    assert result.model_version == predictor.version


def test_flip_tta_is_symmetric(tiny_model, xray):
    predictor = forced(Predictor(tiny_model, flip_tta=True), xray)
    mirrored = XRay(np.ascontiguousarray(xray.pixels[:, ::-1]), xray.source_format)
    a, b = predictor.predict(xray), predictor.predict(mirrored)
    assert a.mask.any()
    assert abs(a.probability - b.probability) < 1e-5
    np.testing.assert_array_equal(b.mask, a.mask[:, ::-1])
    plain = Predictor(tiny_model).predict(xray)
    assert 0.0 <= plain.probability <= 1.0


def test_mask_max_image_score_reads_the_top_pixel_probability(tiny_model, xray):
    """sneddy's triplet: the image call reads the mask's top pixel probability, not the head."""
    predictor = Predictor(tiny_model)
    maps, heads = predictor.probability_maps([xray])
    top = float(maps[0].max())
    predictor.info.operating_point = OperatingPoint(float(np.median(maps[0])), 0.0, top, "mask_max")
    at_top = predictor.predict(xray)
    assert at_top.probability == pytest.approx(top) and at_top.positive
    predictor.info.operating_point.image_threshold = top + 1e-4
    assert not predictor.predict(xray).positive
    predictor.info.operating_point = OperatingPoint(0.5, 0.0, 0.5, "head")
    assert predictor.predict(xray).probability == pytest.approx(float(heads[0]))


def test_flip_tta_follows_the_model_file_unless_told(tiny_model, tmp_path):
    """The operating point was chosen with or without TTA; the predictor must read the maps the
    same way, unless the caller says otherwise."""
    import shutil

    copy = tmp_path / "tta.safetensors"
    shutil.copy(tiny_model, copy)
    assert Predictor(copy).flip_tta is False
    info = read_info(copy)
    info.evaluation = {"flip_tta": True}
    update_metadata(copy, info)
    assert Predictor(copy).flip_tta is True
    assert Predictor(copy, flip_tta=False).flip_tta is False


def test_negative_means_empty_mask(tiny_model, xray, shared_data, labels, pick, make_dicom):
    predictor = Predictor(tiny_model)
    predictor.info.operating_point = OperatingPoint(0.0, 0.0, 1.01)  # nothing can be positive
    result = predictor.predict(xray)
    assert not result.positive and not result.mask.any() and result.area_fraction == 0.0
    predictor.info.operating_point = OperatingPoint(0.0, 1.01, 0.0)  # no mask is large enough
    assert not predictor.predict(xray).mask.any()
    dicom = read_xray(make_dicom(xray.pixels, PixelSpacing=[0.143, 0.143]))
    forced(predictor, dicom)
    result = predictor.predict(dicom)
    assert result.positive
    assert result.area_cm2 == pytest.approx((result.mask > 0).sum() * 0.143 * 0.143 / 100)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model("tf_efficientnet_lite0", pretrained=False).eval()
    point = OperatingPoint(pixel_threshold=0.4, min_area_fraction=1e-3, image_threshold=0.6)
    info = save_model(tmp_path / "m.safetensors", model,
                      ModelInfo("tf_efficientnet_lite0", 64, operating_point=point, training={"epoch": 3}))
    loaded, loaded_info = load_model(tmp_path / "m.safetensors")
    assert loaded_info.operating_point == point and loaded_info.training == {"epoch": 3}
    assert loaded_info.version == info.version and loaded_info.image_size == 64
    images = torch.randn(2, 1, 64, 64)
    rounded = build_model("tf_efficientnet_lite0").eval()
    rounded.load_state_dict({k: v.half().float() if v.is_floating_point() else v
                             for k, v in model.state_dict().items()})
    with torch.no_grad():
        expected, got, original = rounded(images), loaded(images), model(images)
    for e, g, o in zip(expected, got, original):
        torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-4)  # identical up to fp16 storage
        torch.testing.assert_close(torch.sigmoid(g), torch.sigmoid(o), rtol=0, atol=0.05)
    # same weights, same version; metadata can be rewritten without touching the weights
    assert save_model(tmp_path / "again.safetensors", loaded, ModelInfo("tf_efficientnet_lite0", 64)).version \
        == info.version
    before = load_file(str(tmp_path / "m.safetensors"))
    loaded_info.operating_point = OperatingPoint(0.55, 2e-4, 0.3)
    loaded_info.evaluation = {"test": {"auc": 0.9}}
    update_metadata(tmp_path / "m.safetensors", loaded_info)
    after = load_file(str(tmp_path / "m.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    reread = read_info(tmp_path / "m.safetensors")
    assert reread.operating_point == OperatingPoint(0.55, 2e-4, 0.3)
    assert reread.evaluation == {"test": {"auc": 0.9}} and reread.version == info.version
