"""DICOM results for a DICOM input: the SEG is read back by highdicom and its mask equals the
result's mask PNG; the Secondary Capture is the overlay, RGB, at the input's size."""

import io

import highdicom as hd
import numpy as np
import pydicom
import pytest
from PIL import Image

from webapp.cases.services.results import ALGORITHM_NAME
from webapp.cases.models import Job

pytestmark = pytest.mark.django_db


def _body(response):
    return b"".join(response.streaming_content)


def test_seg_read_back_equals_the_result_mask(owner, token_client, api_done_case):
    client = token_client(owner)
    image = client.get(api_done_case["url"]).json()["images"][0]
    mask = np.asarray(Image.open(io.BytesIO(_body(client.get(image["mask_url"]))))) > 0
    assert mask.any()

    response = client.get(image["dicom_seg_url"])
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom"
    seg = hd.seg.segread(io.BytesIO(_body(response)))
    source = pydicom.dcmread(io.BytesIO(_body(client.get(image["original_url"]))))
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=[source.SOPInstanceUID],
                                               segment_numbers=[1])
    assert pixels.shape == (1, image["height"], image["width"], 1)
    assert np.array_equal(pixels[0, :, :, 0] > 0, mask)

    algorithm = seg.get_segment_description(1).algorithm_identification[0]
    job = Job.objects.get(image_id=image["id"])
    assert algorithm.AlgorithmName == ALGORITHM_NAME
    assert algorithm.AlgorithmVersion == job.model_version
    assert seg.StudyInstanceUID == source.StudyInstanceUID
    # Served again: the same object (same UIDs), not a new one each time.
    again = pydicom.dcmread(io.BytesIO(_body(client.get(image["dicom_seg_url"]))))
    assert again.SOPInstanceUID == seg.SOPInstanceUID


def test_secondary_capture_of_the_overlay(owner, token_client, api_done_case):
    client = token_client(owner)
    image = client.get(api_done_case["url"]).json()["images"][0]
    sc = pydicom.dcmread(io.BytesIO(_body(client.get(image["dicom_sc_url"]))))
    overlay = np.asarray(Image.open(io.BytesIO(_body(client.get(image["overlay_url"])))).convert("RGB"))
    assert sc.SOPClassUID == pydicom.uid.SecondaryCaptureImageStorage
    assert sc.PhotometricInterpretation == "RGB" and sc.pixel_array.shape == overlay.shape
    assert np.array_equal(sc.pixel_array, overlay)


def test_no_dicom_results_for_png_inputs_or_unfinished_jobs(owner, token_client, api_case, run_jobs):
    client = token_client(owner)
    png = api_case(owner, extension="png")
    run_jobs(png["id"])
    image = client.get(png["url"]).json()["images"][0]
    assert image["dicom_seg_url"] is None and image["mask_url"]
    assert client.get(image["url"] + "dicom-seg/").status_code == 404
    queued = api_case(owner, index=1)["images"][0]
    assert queued["dicom_seg_url"] is None
    for kind in ("dicom-seg", "dicom-sc", "dicom-sr", "mask", "overlay"):
        assert client.get(queued["url"] + f"{kind}/").status_code == 404
