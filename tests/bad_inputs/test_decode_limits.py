"""Bounded decoding (issue 21), in the ml package: each hostile file is refused in a few seconds
by a cheap check on its bytes, the largest legitimate image is read at a bounded peak memory
(measured in the child process that reads it), a decode over its memory or time is stopped,
and every shared image still reads, exactly as before."""

import time

import numpy as np
import pytest

from ml.core import limits
from ml.core.bounded import DecodeLimits, peak_memory_mb, read_xray_bounded
from ml.core.errors import DecodeLimitExceeded, ImageDimensionsRejected
from ml.core.reading import read_xray
from tests.bad_inputs import hostile
from tests.support.data import subset_images

FEW_SECONDS = 5.0


@pytest.fixture(scope="module")
def largest_png():
    return hostile.png16(limits.MAX_SIDE)


def refused_in(data: bytes, error: type, fragment: str) -> float:
    started = time.monotonic()
    with pytest.raises(error, match=fragment):
        read_xray_bounded(data)
    return time.monotonic() - started


def test_16_bit_8192_png_is_refused_before_decoding():
    data = hostile.png16(8192)
    assert len(data) < 2**20  # a small, allowed upload
    assert refused_in(data, ImageDimensionsRejected, "8192 x 8192") < FEW_SECONDS


def test_deflated_dicom_of_150_mb_zeros_is_refused_and_a_plain_deflated_one_reads():
    bomb = hostile.deflated_bomb(150)
    assert len(bomb) < 2**20
    assert refused_in(bomb, DecodeLimitExceeded, "inflates to more than") < FEW_SECONDS
    # A Deflated file within the bound reads as the same image in Explicit VR Little Endian.
    deflated, plain = read_xray_bounded(hostile.deflated_dicom()), read_xray(hostile.explicit_dicom())
    np.testing.assert_array_equal(deflated.pixels, plain.pixels)
    assert deflated.pixel_spacing_mm == (0.5, 0.5)


def test_jpeg_with_8000_scans_is_refused_before_decoding():
    assert refused_in(hostile.many_scan_jpeg(8000), DecodeLimitExceeded, "8000 scans") < FEW_SECONDS
    # The same image with a few repeated scans is an odd but readable file.
    assert read_xray_bounded(hostile.many_scan_jpeg(limits.MAX_JPEG_SCANS)).width == 512


def test_jpeg_with_8000_scans_inside_a_dicom_is_refused_before_decoding():
    data = hostile.many_scan_jpeg_dicom(8000)
    assert refused_in(data, DecodeLimitExceeded, "DICOM's JPEG image is coded in 8000 scans") \
        < FEW_SECONDS


def test_largest_16_bit_image_reads_at_a_bounded_peak(largest_png):
    """6144 x 6144 x 16 bits is 75 MB of pixels; float64 temporaries made it over 1 GB."""
    xray = read_xray_bounded(largest_png)
    assert xray.pixels.shape == (limits.MAX_SIDE, limits.MAX_SIDE)
    assert xray.pixels.dtype == np.uint8
    assert xray.pixels[0, 0] == 0 and xray.pixels[-1, 0] == 255  # the gradient, stretched
    baseline, peak = peak_memory_mb(hostile.explicit_dicom()), peak_memory_mb(largest_png)
    assert peak - baseline < 400, (baseline, peak)


def test_a_decode_over_its_memory_is_stopped_and_the_caller_carries_on(largest_png):
    with pytest.raises(DecodeLimitExceeded, match="more than 64 MB of memory"):
        read_xray_bounded(largest_png, DecodeLimits(memory_mb=64))
    assert read_xray_bounded(hostile.explicit_dicom()).width == 256  # the next file reads


def test_a_decode_over_its_time_is_stopped(largest_png):
    started = time.monotonic()
    with pytest.raises(DecodeLimitExceeded, match="longer than 0.05 s"):
        read_xray_bounded(largest_png, DecodeLimits(time_s=0.05))
    assert time.monotonic() - started < FEW_SECONDS


def test_16_bit_rescale_matches_float64_exactly():
    """The lookup table gives what (v - min) / (max - min) * 255 in float64 gave, to the bit."""
    values = np.random.default_rng(7).integers(300, 3900, (256, 256)).astype(np.uint16)
    from ml.core.pixels import rescale_to_uint8

    low, high = float(values.min()), float(values.max())
    expected = np.clip(np.rint((values.astype(np.float64) - low) / (high - low) * 255), 0, 255)
    np.testing.assert_array_equal(rescale_to_uint8(values), expected.astype(np.uint8))
    signed = values.astype(np.int16) - 2000
    np.testing.assert_array_equal(rescale_to_uint8(signed), expected.astype(np.uint8))


@pytest.mark.slow
def test_every_shared_image_passes_the_limits():
    """All 1,997 shared images: within the scan and size rules, read in-process (the rules are
    in read_xray), and a sample of each kind through the bounded child with the defaults."""
    paths = [p for extension in ("dcm", "jpg", "png") for p in subset_images(extension)]
    assert len(paths) == 1997
    for path in paths:
        assert read_xray(path).pixels.shape == (1024, 1024), path.name
    for extension in ("dcm", "jpg", "png"):
        for path in subset_images(extension)[:5]:
            assert read_xray_bounded(path.read_bytes()).pixels.shape == (1024, 1024)


# The peak as VmHWM: ru_maxrss survives exec on Linux, so a process started by a big pytest
# would report pytest's peak.
CALLER = """
import re, sys
from ml.core.bounded import read_xray_bounded
from ml.core.errors import XRayError
data = open(sys.argv[1], "rb").read()
try:
    read_xray_bounded(data)
except XRayError:
    pass
print(int(re.search(r"VmHWM:\\s+(\\d+)", open("/proc/self/status").read()).group(1)) // 1024)
"""


@pytest.mark.parametrize("kind", ["largest_png", "png_8192", "deflated_bomb", "many_scans"])
def test_the_callers_own_peak_stays_small(tmp_path, largest_png, kind):
    """What the web or worker process itself holds at its peak (of a process that reads the
    file as they do): the decoding's memory is the child's, not the caller's."""
    import subprocess
    import sys

    from tests.support.data import REPO

    data = {"largest_png": lambda: largest_png, "png_8192": lambda: hostile.png16(8192),
            "deflated_bomb": hostile.deflated_bomb,
            "many_scans": lambda: hostile.many_scan_jpeg(8000)}[kind]()
    path = tmp_path / "file"
    path.write_bytes(data)
    result = subprocess.run([sys.executable, "-c", CALLER, str(path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=True)
    assert int(result.stdout.strip()) < 250, result.stdout  # MB: the interpreter, the pixels


def test_a_stop_sent_to_the_whole_group_leaves_the_decode_server_serving():
    """systemd, Ctrl-C and a worker's warm shutdown signal the whole process group: the server
    (and a read in progress) carries on for the process that is finishing its job."""
    import os
    import signal

    from ml.core import bounded

    assert read_xray_bounded(hostile.explicit_dicom()).width == 256
    server = bounded._server["process"]
    for stop in (signal.SIGTERM, signal.SIGINT):
        os.kill(server.pid, stop)
    time.sleep(0.5)
    assert server.poll() is None
    assert read_xray_bounded(hostile.explicit_dicom()).width == 256
