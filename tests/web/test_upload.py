"""Uploads are checked by content: good X-rays make a case with queued jobs; anything else is
refused with a message on the page (HTTP 400), and nothing is stored."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.data import subset_image
from tests.support.dicom import chest_dicom
from webapp.cases.models import Case, CaseImage, Job, JobStatus

pytestmark = pytest.mark.django_db


def post(client, *files, **extra):
    return client.post(reverse("cases:upload"), {"images": list(files), **extra})


def real(extension, name=None):
    path = subset_image(extension)
    return SimpleUploadedFile(name or path.name, path.read_bytes())


@pytest.mark.parametrize("extension, source_format", [("dcm", "dicom"), ("png", "png"), ("jpg", "jpeg")])
def test_real_xray_creates_case_image_and_queued_job(login, owner, extension, source_format):
    response = post(login(owner), real(extension))
    assert response.status_code == 302
    case = Case.objects.get(owner=owner)
    assert response["Location"] == reverse("cases:detail", args=[case.pk])
    image = case.images.get()
    assert (image.source_format, image.width, image.height) == (source_format, 1024, 1024)
    assert image.job.status == JobStatus.QUEUED and image.job.attempts == 0
    assert image.original.name.startswith(f"cases/{case.pk}/{image.pk}/original.")
    if source_format == "dicom":
        assert image.metadata["Modality"] == "CR"
        assert case.study_metadata["StudyInstanceUID"] == image.metadata["StudyInstanceUID"]
        assert image.pixel_spacing_mm == pytest.approx([0.143, 0.143])
        assert "PatientName" not in image.metadata and "PatientID" not in image.metadata


def test_several_images_make_one_case_with_one_job_each(login, owner):
    assert post(login(owner), real("dcm"), real("png"), real("jpg")).status_code == 302
    case = Case.objects.get(owner=owner)
    assert case.images.count() == 3 and Job.objects.filter(image__case=case).count() == 3


def truncated_png():
    return subset_image("png").read_bytes()[:5000]


@pytest.mark.parametrize("name, data, message", [
    ("notes.png", b"<html><script>alert(1)</script></html>", "Not a DICOM, PNG or JPEG"),
    ("empty.dcm", b"", "empty"),
    ("cut.png", None, "damaged or truncated"),
    ("report.pdf", b"%PDF-1.4 hello", "Not a DICOM, PNG or JPEG"),
])
def test_broken_or_non_image_upload_is_refused_with_message(login, owner, name, data, message):
    data = truncated_png() if data is None else data
    response = post(login(owner), SimpleUploadedFile(name, data))
    assert response.status_code == 400
    page = response.content.decode()
    assert "The upload was refused" in page and message in page and name in page
    assert not Case.objects.exists() and not CaseImage.objects.exists()


def test_one_bad_file_refuses_the_whole_case(login, owner):
    response = post(login(owner), real("dcm"), SimpleUploadedFile("bad.jpg", b"\xff\xd8\xff garbage"))
    assert response.status_code == 400 and "bad.jpg" in response.content.decode()
    assert not Case.objects.exists()


def test_file_over_the_size_limit_is_refused(login, owner, settings):
    settings.MAX_UPLOAD_FILE_BYTES = 100_000
    response = post(login(owner), real("dcm"))
    assert response.status_code == 400 and "larger than the limit" in response.content.decode()
    assert not Case.objects.exists()


def test_no_file_is_refused(login, owner):
    response = login(owner).post(reverse("cases:upload"), {})
    assert response.status_code == 400 and "Choose at least one" in response.content.decode()


def test_hostile_file_name_is_cleaned(login, owner):
    assert post(login(owner), real("png", name="..\\..\\etc\\pa\x00ss" + "é" * 300 + ".png")).status_code == 302
    image = CaseImage.objects.get()
    assert "/" not in image.original_name and "\\" not in image.original_name
    assert "\x00" not in image.original_name and len(image.original_name) <= 200
    assert image.original.name.endswith("/original.png")  # stored under its id, not its name


def test_reference_must_be_unique_per_user(login, owner):
    client = login(owner)
    assert post(client, real("png"), client_reference="ward-7/42").status_code == 302
    response = post(client, real("png"), client_reference="ward-7/42")
    assert response.status_code == 400 and "already have a case" in response.content.decode()
    assert Case.objects.count() == 1


# --- the projection: the model reads frontal films only --------------------------------------

def stored_files():
    from pathlib import Path

    from django.conf import settings

    root = Path(str(settings.PRIVATE_MEDIA_ROOT))
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


@pytest.mark.parametrize("view_position, kind", [
    ("LL", "lateral"), ("RL", "lateral"), ("LATERAL", "lateral"), ("LAT", "lateral"),
    ("XTABLE LATERAL", "lateral"), ("RLD", "lateral decubitus"), ("LLD", "lateral decubitus"),
    ("AP LLD", "lateral decubitus"), ("RAO", "oblique"),
])
def test_non_frontal_film_is_refused_with_the_reason_and_nothing_is_stored(login, owner,
                                                                           view_position, kind):
    before = stored_files()
    response = post(login(owner), chest_dicom(view_position, name="side.dcm"))
    assert response.status_code == 400
    page = response.content.decode()
    assert "The upload was refused" in page and "side.dcm" in page
    assert (f"{kind} view (ViewPosition {view_position}): the model reads frontal PA/AP chest "
            "films only") in page
    assert not Case.objects.exists() and not CaseImage.objects.exists() and not Job.objects.exists()
    assert stored_files() == before


def test_lateral_film_refuses_the_whole_case(login, owner):
    response = post(login(owner), chest_dicom("PA"), chest_dicom("LL"))
    assert response.status_code == 400
    assert "lateral view (ViewPosition LL)" in response.content.decode()
    assert not Case.objects.exists()


@pytest.mark.parametrize("view_position", ["PA", "AP", None])
def test_frontal_film_is_accepted(login, owner, view_position):
    assert post(login(owner), chest_dicom(view_position)).status_code == 302
    image = CaseImage.objects.get()
    assert image.job.status == JobStatus.QUEUED
    assert image.metadata.get("ViewPosition") == view_position
