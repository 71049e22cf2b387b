"""What a newcomer notices (issue 20): confirmations after a review or a deletion, the refused
mixed upload's page saying that the good file was not stored either, the window/level note only
under DICOM images, and the worklist's "reviewed" filter saying it counts whole cases."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.data import subset_image
from tests.support.factories import CaseFactory, UploadFactory
from tests.support.stubs import StubPredictor
from tests.web.markup import parse
from webapp.cases.models import Case, CaseImage

pytestmark = pytest.mark.django_db


def status_region(html: str) -> str:
    main = next(parse(html).find_all("main"))
    return next(e for e in main.children if not isinstance(e, str) and e.attrs.get("role") == "status").text


def review_section(html: str, image) -> str:
    section = next(parse(html).find_all("section", id=f"image-{image.pk}"))
    return next(section.find_all("section", class_="review")).text


def test_a_saved_review_is_confirmed_beside_its_form(login, owner):
    case = CaseFactory(owner=owner, predictor=StubPredictor(),
                       uploads=[UploadFactory(extension="dcm", index=0), UploadFactory(extension="png", index=0)])
    first, second = case.images.order_by("created_at", "pk")
    client = login(owner)
    url = reverse("reviews:review", args=[case.pk, second.pk])
    page = client.post(url, {"verdict": "agree", "true_label": "present"}, follow=True).content.decode()
    # The page comes back at that image: the confirmation is there, in a status region.
    assert "Your review was saved." in review_section(page, second)
    assert "Your review was saved." not in review_section(page, first) + status_region(page)
    section = next(parse(page).find_all("section", id=f"image-{second.pk}"))
    assert next(section.find_all(**{"data-role": "review-message"})).attrs["role"] == "status"
    again = client.post(url, {"verdict": "disagree", "true_label": "absent"}, follow=True).content.decode()
    assert "Your review was updated." in review_section(again, second)
    refused = client.post(url, {"verdict": "maybe"}, follow=True).content.decode()
    assert "The review was not saved." in review_section(refused, second)
    # Said once: the next page has no stale message.
    assert "review was" not in client.get(reverse("cases:detail", args=[case.pk])).content.decode()


def test_a_deleted_case_is_confirmed_on_the_worklist_in_the_status_region(login, owner, done_case):
    page = login(owner).post(reverse("cases:delete", args=[done_case.pk]), follow=True).content.decode()
    assert "The case was deleted." in status_region(page)


def test_a_refused_mixed_upload_says_the_good_file_was_not_stored(login, owner):
    good = subset_image("png")
    response = login(owner).post(reverse("cases:upload"), {"images": [
        SimpleUploadedFile(good.name, good.read_bytes()), SimpleUploadedFile("bad.jpg", b"\xff\xd8\xff garbage")]})
    assert response.status_code == 400
    alert = next(parse(response.content.decode()).find_all(id="upload-errors")).text
    assert "nothing was stored" in alert and "files without a problem were not kept either" in alert
    assert "bad.jpg" in alert
    assert not Case.objects.exists() and not CaseImage.objects.exists()


@pytest.mark.parametrize("extension, says_dicom_window", [("dcm", True), ("png", False), ("jpg", False)])
def test_the_window_note_names_the_dicom_window_only_under_a_dicom(login, owner, extension, says_dicom_window):
    case = CaseFactory(owner=owner, extension=extension)
    page = parse(login(owner).get(reverse("cases:detail", args=[case.pk])).content.decode())
    note = next(page.find_all(**{"data-viewer-role": "message"})).text
    assert note.startswith("Window and level change the display image only")
    assert ("DICOM's own window" in note) is says_dicom_window


def test_the_reviewed_filter_says_it_counts_every_image_of_a_case(login, owner):
    from webapp.reviews.services import record_review

    case = CaseFactory(owner=owner, predictor=StubPredictor(),
                       uploads=[UploadFactory(extension="dcm", index=i) for i in range(3)])
    record_review(owner, case.images.first(), "agree", "present", "", "10.0.0.1")  # 1 of 3
    client = login(owner)
    options = {e.attrs["value"]: e.text for e in parse(client.get(reverse("cases:list")).content.decode())
               .find_all("option") if e.parent.attrs.get("name") == "reviewed"}
    assert options == {"": "any", "yes": "every image reviewed", "no": "an image not yet reviewed"}
    # And it does what it says: 1 of 3 reviewed is "an image not yet reviewed".
    assert str(case.pk) in client.get(reverse("cases:list"), {"reviewed": "no"}).content.decode()
    assert str(case.pk) not in client.get(reverse("cases:list"), {"reviewed": "yes"}).content.decode()
