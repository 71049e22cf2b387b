"""ml.core.reading: real shared images of each format, DICOMs built here, and hostile files."""

from __future__ import annotations

import io
import struct
import time
import zlib

import numpy as np
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from ml.core.errors import (CorruptImage, EmptyFile, ImageDimensionsRejected, MultiFrameImage, NoPixelData,
                       NotChestRadiograph, UnsupportedFormat, XRayError)
from ml.core.reading import detect_format, read_xray

GRADIENT_8 = np.tile(np.arange(256, dtype=np.uint8), (64, 1))  # 64 x 256
GRADIENT_12 = np.arange(4096, dtype=np.uint16).reshape(64, 64)


def rescaled(values) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    return np.rint((values - values.min()) / (values.max() - values.min()) * 255).astype(np.uint8)


# --------------------------------------------------------------------------- real images


@pytest.mark.parametrize("suffix,fmt", [(".dcm", "dicom"), (".jpg", "jpeg"), (".png", "png")])
def test_real_shared_images(shared_data, labels, pick, suffix, fmt):
    row = pick(labels, suffix, True)[0]
    xray = read_xray(shared_data / row["image"])
    assert xray.source_format == fmt
    assert xray.pixels.shape == (1024, 1024) and xray.pixels.dtype == np.uint8
    assert 0 < xray.pixels.mean() < 255
    if fmt == "dicom":
        assert xray.metadata.get("Modality") == "CR"
    else:
        assert xray.pixel_spacing_mm is None


def test_real_dicom_spacing(shared_data):
    path = shared_data / "images/1.2.276.0.7230010.3.1.4.8323329.5798.1517875190.796716.dcm"
    if not path.exists():
        pytest.skip("reference DICOM missing")
    assert read_xray(path).pixel_spacing_mm == pytest.approx((0.143, 0.143))


def test_format_from_bytes_not_name(shared_data, labels, pick, tmp_path):
    row = pick(labels, ".jpg", True)[0]
    misnamed = tmp_path / "scan.dcm"
    misnamed.write_bytes((shared_data / row["image"]).read_bytes())
    assert read_xray(misnamed).source_format == "jpeg"
    assert read_xray(misnamed.read_bytes()).pixels.shape == (1024, 1024)


# --------------------------------------------------------------------------- built DICOMs


def test_monochrome1_is_inverted(make_dicom):
    normal = read_xray(make_dicom(GRADIENT_8, photometric="MONOCHROME2")).pixels
    inverted = read_xray(make_dicom(GRADIENT_8, photometric="MONOCHROME1")).pixels
    np.testing.assert_array_equal(normal, GRADIENT_8)  # 8-bit, no LUT: stored values kept
    np.testing.assert_array_equal(inverted, 255 - GRADIENT_8)


def test_16_bit_with_rescale(make_dicom):
    raw = np.linspace(0, 65535, 64 * 80).astype(np.uint16).reshape(64, 80)
    plain = read_xray(make_dicom(raw)).pixels
    np.testing.assert_array_equal(plain, rescaled(raw))
    # a negative slope inverts: proof that the modality LUT is applied
    flipped = read_xray(make_dicom(raw, RescaleSlope=-1, RescaleIntercept=100)).pixels
    assert flipped[0, 0] == 255 and flipped[-1, -1] == 0
    assert np.abs(flipped.astype(int) - (255 - plain.astype(int))).max() <= 1


def test_voi_lut_sequence(make_dicom):
    item = Dataset()
    item.add_new(0x00283002, "US", [4096, 0, 12])  # LUTDescriptor
    item.add_new(0x00283006, "US", [4095 - v for v in range(4096)])  # LUTData: an inverting LUT
    pixels = read_xray(make_dicom(GRADIENT_12, bits_stored=12, VOILUTSequence=Sequence([item]))).pixels
    assert pixels[0, 0] == 255 and pixels[-1, -1] == 0
    assert np.abs(pixels.astype(int) - (255 - rescaled(GRADIENT_12).astype(int))).max() <= 1


def test_window_center_width(make_dicom):
    pixels = read_xray(make_dicom(GRADIENT_12, bits_stored=12, WindowCenter=2048, WindowWidth=1024)).pixels
    assert (pixels[GRADIENT_12 < 1500] == 0).all()
    assert (pixels[GRADIENT_12 > 2600] == 255).all()
    inside = pixels[(GRADIENT_12 > 1600) & (GRADIENT_12 < 2500)]
    assert (np.diff(inside.astype(int)) >= 0).all() and 0 < inside.min() < inside.max() < 255


def test_missing_pixel_data(make_dicom):
    with pytest.raises(NoPixelData):
        read_xray(make_dicom(GRADIENT_8, pixel_data=False))


def test_multi_frame(make_dicom):
    frames = np.stack([GRADIENT_8, GRADIENT_8])
    with pytest.raises(MultiFrameImage):
        read_xray(make_dicom(frames, frames=2))


def test_ct_is_refused(make_dicom):
    with pytest.raises(NotChestRadiograph):
        read_xray(make_dicom(GRADIENT_8, modality="CT"))


def test_imager_pixel_spacing_fallback(make_dicom):
    assert read_xray(make_dicom(GRADIENT_8, ImagerPixelSpacing=[0.2, 0.25])).pixel_spacing_mm == (0.2, 0.25)
    assert read_xray(make_dicom(GRADIENT_8, PixelSpacing=[0.143, 0.143],
                                ImagerPixelSpacing=[0.2, 0.2])).pixel_spacing_mm == (0.143, 0.143)
    assert read_xray(make_dicom(GRADIENT_8)).pixel_spacing_mm is None


# --------------------------------------------------------------------------- rasters


def png_bytes(array, mode=None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG") if mode else \
        Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_16_bit():
    raw = np.linspace(1000, 60000, 64 * 96).astype(np.uint16).reshape(64, 96)
    xray = read_xray(png_bytes(raw))
    assert xray.source_format == "png" and xray.pixels.dtype == np.uint8
    assert xray.pixels.min() == 0 and xray.pixels.max() == 255
    assert (np.diff(xray.pixels.reshape(-1).astype(int)) >= 0).all()


def test_png_rgb():
    rgb = np.repeat(GRADIENT_8[..., None], 3, axis=2)
    xray = read_xray(png_bytes(rgb))
    assert xray.pixels.shape == GRADIENT_8.shape
    np.testing.assert_array_equal(xray.pixels, GRADIENT_8)


# --------------------------------------------------------------------------- hostile input


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".dcm"])
def test_truncated_files(shared_data, labels, pick, suffix):
    data = (shared_data / pick(labels, suffix, True)[0]["image"]).read_bytes()
    with pytest.raises(CorruptImage):
        read_xray(data[: len(data) // 2])


def test_dicom_with_a_cut_off_jpeg_stream_is_refused(shared_data, labels, pick):
    """A well-formed file whose JPEG stream stops early (as a C-STORE of a damaged instance
    arrives: the elements re-encoded with the short length) still decodes, into a partly grey
    film; the missing end-of-image marker gives it away."""
    import pydicom

    dataset = pydicom.dcmread(shared_data / pick(labels, ".dcm", True)[0]["image"])
    assert str(dataset.file_meta.TransferSyntaxUID) == "1.2.840.10008.1.2.4.50"  # JPEG baseline
    dataset.PixelData = dataset.PixelData[: len(dataset.PixelData) // 3]
    buffer = io.BytesIO()
    dataset.save_as(buffer)
    with pytest.raises(CorruptImage, match="truncated"):
        read_xray(buffer.getvalue())


def test_text_named_png(tmp_path):
    path = tmp_path / "chest.png"
    path.write_text("this is not an image\n" * 20)
    with pytest.raises(UnsupportedFormat):
        read_xray(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.dcm"
    path.write_bytes(b"")
    with pytest.raises(EmptyFile):
        read_xray(path)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


@pytest.mark.parametrize("width,height", [(100_000, 100_000), (9000, 100), (20, 20)])
def test_png_bomb_and_absurd_dimensions(width, height):
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(b"\x00" * 1000)) + png_chunk(b"IEND", b""))
    assert len(data) < 200
    started = time.monotonic()
    with pytest.raises(ImageDimensionsRejected):
        read_xray(data)
    assert time.monotonic() - started < 1.0


def test_errors_are_user_facing():
    with pytest.raises(XRayError) as caught:
        detect_format(b"GIF89a" + b"\x00" * 200)
    assert "DICOM, PNG or JPEG" in str(caught.value)
