"""Findings in words (ml.serving.findings): side, zones, rim depth and the large call, on hand-made
masks whose answer is known by construction and on real shared masks whose side was read off
the film by eye (the "L" marker and the heart on the image's right, so the convention holds)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from ml.serving.findings import LARGE_RIM_MM, describe, image_is_mirrored, in_words

SIZE = 600


def _mask(*boxes) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), dtype=bool)
    for top, bottom, left, right in boxes:
        mask[top:bottom, left:right] = True
    return mask


def test_nothing_found_has_no_side_zone_or_size_call():
    findings = describe(np.zeros((SIZE, SIZE), bool), pixel_spacing_mm=(0.2, 0.2))
    assert (findings.side, findings.zones, findings.rim_depth_mm, findings.large) == (None, (), None, None)
    assert findings.area_percent == 0.0
    assert in_words(findings) == "No pneumothorax outlined."


def test_image_left_is_the_patients_right_by_convention():
    findings = describe(_mask((20, 150, 40, 140)))
    assert findings.side == "right"
    assert findings.side_basis == "convention"
    assert describe(_mask((20, 150, 460, 560))).side == "left"


@pytest.mark.parametrize("orientation, side", [
    ("L\\F", "right"), (["L", "F"], "right"), ("['L', 'F']", "right"),
    ("R\\F", "left"), (["R", "H"], "left"),
])
def test_patient_orientation_in_the_header_decides_the_side(orientation, side):
    findings = describe(_mask((20, 150, 40, 140)), patient_orientation=orientation)
    assert findings.side == side
    assert findings.side_basis == "header"


@pytest.mark.parametrize("orientation", [None, "", "A\\F", "[]"])
def test_orientation_that_says_nothing_about_left_and_right_falls_back_to_the_convention(orientation):
    assert image_is_mirrored(orientation) is None
    assert describe(_mask((20, 150, 40, 140)), patient_orientation=orientation).side_basis == "convention"


def test_both_sides_needs_a_real_share_on_the_smaller_side():
    big_right = (20, 300, 40, 140)  # 28,000 px on the image's left
    assert describe(_mask(big_right, (20, 80, 460, 520))).side == "both"  # 3,600 px: 11%
    assert describe(_mask(big_right, (20, 30, 460, 500))).side == "right"  # 400 px: a speck


def test_zones_by_thirds_of_the_image():
    assert describe(_mask((10, 120, 100, 200))).zones == ("apical",)
    assert describe(_mask((480, 590, 100, 200))).zones == ("basal",)
    assert describe(_mask((250, 350, 10, 100))).zones == ("lateral",)
    # A rim along the whole chest wall, apex to base.
    assert describe(_mask((20, 580, 10, 60))).zones == ("apical", "lateral", "basal")
    # Medial, middle third: no zone holds 15%, so the one holding most names it (none here).
    assert describe(_mask((250, 350, 200, 280))).zones == ()


def test_rim_depth_is_the_widest_point_in_millimetres_and_large_at_two_centimetres():
    spacing = (0.2, 0.2)
    band_px = int(LARGE_RIM_MM / spacing[1])  # a 100 px band at 0.2 mm is 2 cm deep
    large = describe(_mask((100, 500, 20, 20 + band_px)), pixel_spacing_mm=spacing)
    assert large.rim_depth_mm == pytest.approx(20.0, abs=0.5)
    assert large.large is True
    small = describe(_mask((100, 500, 20, 20 + band_px // 2)), pixel_spacing_mm=spacing)
    assert small.rim_depth_mm == pytest.approx(10.0, abs=0.5)
    assert small.large is False
    assert small.area_cm2 == pytest.approx(400 * 50 * 0.04 / 100, rel=1e-6)


def test_without_spacing_depth_is_a_share_of_the_width_and_no_large_call():
    findings = describe(_mask((100, 500, 20, 80)))
    assert findings.rim_depth_mm is None and findings.large is None and findings.area_cm2 is None
    assert findings.rim_depth_percent_width == pytest.approx(100 * 60 / SIZE, abs=0.5)
    assert "of the image width" in in_words(findings)


def test_in_words_reads_like_a_report_line():
    findings = describe(_mask((20, 580, 10, 130)), pixel_spacing_mm=(0.2, 0.2))
    assert in_words(findings).startswith("Right, apical to basal; rim 24 mm (large, BTS 2 cm); ")


def test_as_dict_is_json_ready():
    values = describe(_mask((10, 120, 100, 200)), pixel_spacing_mm=(0.2, 0.2)).as_dict()
    assert values["zones"] == ["apical"] and values["side"] == "right"
    assert set(values) >= {"side", "zones", "rim_depth_mm", "large", "area_percent", "area_cm2"}


# Read by eye on the films (the "L" marker and the heart are on the image's right).
CHECKED_SIDES = {
    "1.2.276.0.7230010.3.1.4.8323329.6319.1517875197.587372": "right",
    "1.2.276.0.7230010.3.1.4.8323329.6722.1517875199.827171": "left",
    "1.2.276.0.7230010.3.1.4.8323329.6151.1517875196.762570": "both",
}


@pytest.mark.parametrize("image_id, side", sorted(CHECKED_SIDES.items()))
def test_real_masks_get_the_side_read_off_the_film(shared_data, image_id, side):
    from ml.core.reading import read_xray

    xray = read_xray((shared_data / "images" / f"{image_id}.dcm").read_bytes())
    mask = np.asarray(Image.open(shared_data / "masks" / f"{image_id}.png")) > 0
    findings = describe(mask, xray.pixel_spacing_mm, xray.metadata.get("PatientOrientation"))
    assert findings.side == side
    assert findings.side_basis == "convention"  # these headers leave PatientOrientation empty
    assert findings.rim_depth_mm is not None and findings.rim_depth_mm > 5


def test_predictor_returns_findings_and_review_first(tiny_model, shared_data, tmp_path):
    """The served answer carries the findings of the very mask it returns, and the review flag
    follows the stored review threshold (none stored: the flag is the call)."""
    import shutil

    from ml.core.checkpoint import read_info, update_metadata
    from ml.core.reading import read_xray
    from ml.serving.inference import Predictor

    xray = read_xray(sorted((shared_data / "images").glob("*.dcm"))[0].read_bytes())
    result = Predictor(tiny_model).predict(xray)
    assert result.findings == describe(result.mask > 0, xray.pixel_spacing_mm,
                                       xray.metadata.get("PatientOrientation"))
    assert result.review_first == result.positive
    model = tmp_path / "model.safetensors"
    shutil.copy(tiny_model, model)
    info = read_info(model)
    info.operating_point.review_threshold = 0.0  # every image is "review first"
    update_metadata(model, info)
    flagged = Predictor(model).predict(xray)
    assert flagged.review_first is True and flagged.positive == result.positive
