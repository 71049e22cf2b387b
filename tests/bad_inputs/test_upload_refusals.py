"""Each bad input is refused at upload with a clear message (HTTP 400), stores nothing, never
answers 500; hostile file names are cleaned; a wrong CSRF token is a 403 page. Afterwards a good
upload still works."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from tests.bad_inputs import corpus
from webapp.cases.models import Case, CaseImage

pytestmark = pytest.mark.django_db

REFUSED = corpus.refused()


def stored_files(settings):
    root = Path(str(settings.PRIVATE_MEDIA_ROOT))
    return {p for p in root.rglob("*") if p.is_file()} if root.exists() else set()


def post(client, name, data):
    return client.post(reverse("cases:upload"), {"images": [SimpleUploadedFile(name, data)]})


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_bad_file_is_refused_with_a_message_and_nothing_stored(login, owner, settings, kind):
    name, data, message = REFUSED[kind]
    before = stored_files(settings)
    response = post(login(owner), name, data)
    assert response.status_code == 400
    page = response.content.decode()
    assert message in page, page[-2000:]
    assert not Case.objects.exists()
    assert stored_files(settings) == before


def test_file_over_the_size_limit_is_refused(login, owner, settings):
    settings.MAX_UPLOAD_FILE_BYTES = 100_000
    response = post(login(owner), "big.png", corpus.real("png"))  # a real X-ray, too big here
    assert response.status_code == 400 and "larger than the limit" in response.content.decode()
    assert not Case.objects.exists()


def test_all_bad_files_in_one_case_are_all_reported(login, owner):
    files = [SimpleUploadedFile(name, data) for name, data, _ in REFUSED.values()]
    response = login(owner).post(reverse("cases:upload"), {"images": files})
    assert response.status_code == 400
    page = response.content.decode()
    for name, _, message in REFUSED.values():
        assert message in page
    assert not Case.objects.exists()


@pytest.mark.parametrize("kind", sorted(corpus.HOSTILE_NAMES))
def test_hostile_file_name_is_cleaned_and_never_used_as_a_path(login, owner, settings, kind):
    client = login(owner)
    response = post(client, corpus.HOSTILE_NAMES[kind], corpus.real("png"))
    assert response.status_code in (302, 400), response.status_code
    if response.status_code == 400:
        return  # refused with a message is acceptable; a 500 is not
    image = CaseImage.objects.get(case__owner=owner)
    name = image.original_name
    assert "/" not in name and "\\" not in name and "\x00" not in name and "\u202e" not in name
    assert 0 < len(name) <= 200
    assert image.original.name == f"cases/{image.case_id}/{image.pk}/original.png"
    root = Path(str(settings.PRIVATE_MEDIA_ROOT)).resolve()
    assert root in (root / image.original.name).resolve().parents
    download = client.get(reverse("cases:image_file", args=[image.case_id, image.pk, "original"]))
    assert download.status_code == 200
    assert "\x00" not in download["Content-Disposition"] and "/" not in download["Content-Disposition"].split("filename", 1)[-1]


def test_wrong_or_missing_csrf_token_is_a_403_page_not_a_500(owner):
    client = Client(enforce_csrf_checks=True, REMOTE_ADDR="10.1.2.3")
    client.force_login(owner)
    assert client.get(reverse("cases:upload")).status_code == 200  # sets the CSRF cookie
    for extra in ({"csrfmiddlewaretoken": "x" * 64}, {}):
        response = client.post(reverse("cases:upload"),
                               {"images": [SimpleUploadedFile("a.png", corpus.real("png"))], **extra})
        assert response.status_code == 403
        assert "security token" in response.content.decode()
    assert not Case.objects.exists()
    login_post = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "x", "password": "y"})
    assert login_post.status_code == 403


def test_good_upload_still_works_after_the_bad_ones(login, owner):
    client = login(owner)
    for name, data, _ in REFUSED.values():
        assert post(client, name, data).status_code == 400
    assert post(client, "good.dcm", corpus.real("dcm")).status_code == 302
    assert Case.objects.filter(owner=owner).count() == 1
