"""The files of issue 21 through every way in: the upload page, the REST API, STOW-RS and the
DICOM listener's ingest each refuse them with a clear reason (a 4xx; for STOW-RS and C-STORE
"out of resources", A700) within a few seconds, and store nothing. They share one check
(webapp.cases.services.checks), so the rules hold the same everywhere."""

import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from rest_framework.test import APIClient

from tests.bad_inputs import hostile
from tests.support.stow import failures, multipart, stow
from webapp.cases.models import Case
from webapp.pacs.models import DicomNode
from webapp.pacs.services.ingest import OUT_OF_RESOURCES, InstanceRefused, receive_instance

pytestmark = pytest.mark.django_db

FEW_SECONDS = 8.0  # the whole request, on a busy 2-core machine
HOSTILE = {  # name: (file name, bytes, what the reason says)
    "png_8192_16_bit": ("big.png", lambda: hostile.png16(8192), "8192 x 8192"),
    "deflated_dicom_bomb": ("bomb.dcm", lambda: hostile.deflated_bomb(150), "inflates to more than"),
    "jpeg_8000_scans": ("scans.jpg", lambda: hostile.many_scan_jpeg(8000), "8000 scans"),
    "jpeg_dicom_8000_scans": ("scans.dcm", lambda: hostile.many_scan_jpeg_dicom(8000), "8000 scans"),
}
DICOM_KINDS = ("deflated_dicom_bomb", "jpeg_dicom_8000_scans")


@pytest.fixture(scope="module")
def files():
    return {kind: (name, make(), message) for kind, (name, make, message) in HOSTILE.items()}


def timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_upload_page_refuses_it_quickly(login, owner, files, kind):
    name, data, message = files[kind]
    client = login(owner)
    response, seconds = timed(lambda: client.post(
        reverse("cases:upload"), {"images": [SimpleUploadedFile(name, data)]}))
    assert response.status_code == 400 and seconds < FEW_SECONDS, seconds
    assert message in response.content.decode()
    assert not Case.objects.exists()


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_api_refuses_it_quickly(owner, files, kind):
    name, data, message = files[kind]
    client = APIClient(REMOTE_ADDR="10.4.5.6")
    client.force_authenticate(owner)
    response, seconds = timed(lambda: client.post(
        "/api/v1/cases/", {"images": [SimpleUploadedFile(name, data)]}, format="multipart"))
    assert response.status_code == 400 and seconds < FEW_SECONDS, seconds
    assert any(message in error for error in response.json()["errors"]), response.json()
    assert not Case.objects.exists()


@pytest.mark.parametrize("kind", DICOM_KINDS)
def test_stow_rs_refuses_it_quickly_as_out_of_resources(owner, files, kind):
    _, data, message = files[kind]
    client = APIClient(REMOTE_ADDR="10.4.5.6")
    client.force_authenticate(owner)
    response, seconds = timed(lambda: stow(client, multipart(data)))
    assert response.status_code == 409 and seconds < FEW_SECONDS, seconds
    assert [f["reason"] for f in failures(response.json())] == [OUT_OF_RESOURCES]
    assert message in response["Warning"]
    assert not Case.objects.exists()


@pytest.mark.parametrize("kind", DICOM_KINDS)
def test_dicom_listener_refuses_it_quickly_as_out_of_resources(owner, files, kind):
    call_command("add_dicom_node", "--ae-title", "HOSTILE", "--host", "127.0.0.1",
                 "--port", "4242", "--owner", owner.username)
    node = DicomNode.objects.get(ae_title="HOSTILE")
    _, data, message = files[kind]
    started = time.monotonic()
    with pytest.raises(InstanceRefused) as refused:
        receive_instance(node, data, association="assoc-1", address="127.0.0.1")
    assert time.monotonic() - started < FEW_SECONDS
    assert refused.value.status == OUT_OF_RESOURCES and message in refused.value.reason
    assert not Case.objects.exists()


def test_a_plain_deflated_dicom_is_accepted_through_the_page(login, owner):
    response = login(owner).post(reverse("cases:upload"), {
        "images": [SimpleUploadedFile("deflated.dcm", hostile.deflated_dicom())]})
    assert response.status_code == 302
    image = Case.objects.get(owner=owner).images.get()
    assert (image.source_format, image.width, image.height) == ("dicom", 256, 256)
