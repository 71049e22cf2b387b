"""Outlines corrected in the viewer (webapp.reviews.outlines): each save a new version with its
audit row, the model's mask never changed, the case page's "Outline corrected by", PNGs checked
by content, who may correct, the files going with the case, and the training folder of
``manage.py export_feedback --out-dir`` as ml reads it."""

import csv
import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image

from ml.training.feedback import load_site_films
from tests.support.factories import CaseFactory, TeamFactory
from tests.support.reviews import ReviewFactory
from tests.support.stubs import StubPredictor
from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import Case
from webapp.cases.services import files
from webapp.cases.services.deletion import delete_case
from webapp.reviews import outlines
from webapp.reviews.models import CorrectedOutline

pytestmark = pytest.mark.django_db


def outline_url(image):
    return reverse("reviews:outline", args=[image.case_id, image.pk])


def png(array, mode="L") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


def drawn(image, box=(slice(40, 120), slice(60, 200)), value=255):
    mask = np.zeros((image.height, image.width), np.uint8)
    mask[box] = value
    return mask


def post(client, image, data: bytes):
    return client.post(outline_url(image), {"mask": io.BytesIO(data)})


def pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"))


@pytest.fixture
def image(done_case):
    return done_case.images.get()


def test_each_save_is_a_new_version_and_the_models_mask_stays(login, owner, image):
    model_mask = image.job.mask.name
    model_bytes = files.read(model_mask)
    client = login(owner)

    first = post(client, image, png(drawn(image)))
    assert first.status_code == 201, first.content
    assert first.json()["version"] == 1 and first.json()["empty"] is False
    # a canvas's PNG: RGBA, opaque, 0/1 grey would do too
    rgba = np.dstack([drawn(image, value=255)] * 3 + [np.full((image.height, image.width), 255, np.uint8)])
    second = post(client, image, png(rgba, "RGBA"))
    assert second.status_code == 201 and second.json()["version"] == 2

    saved = list(CorrectedOutline.objects.filter(image=image).order_by("version"))
    assert [(o.version, o.created_by, o.based_on_model_version) for o in saved] == [
        (1, owner, "stub-1"), (2, owner, "stub-1")]
    assert saved[0].mask.name != saved[1].mask.name  # write-once files, one per version
    assert saved[0].mask.name.startswith(f"cases/{image.case_id}/{image.pk}/outline-v1")
    image.job.refresh_from_db()
    assert image.job.mask.name == model_mask and files.read(model_mask) == model_bytes

    events = AuditEvent.objects.filter(action=Action.OUTLINE_CORRECTED).order_by("pk")
    assert [e.detail["version"] for e in events] == [1, 2]
    assert events[0].user == owner and events[0].object_id == str(image.pk)
    assert events[0].detail["pixels"] == int((drawn(image) > 0).sum())

    served = client.get(outline_url(image))
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["Cache-Control"].startswith("private")
    assert np.array_equal(pixels(b"".join(served.streaming_content)), drawn(image))

    page = client.get(reverse("cases:detail", args=[image.case_id])).content.decode()
    assert "Outline corrected by <strong data-outline-role=\"corrected-by\">owner</strong>" in page
    assert "version 2 of 2" in page and 'data-has-outline="1"' in page


def test_no_pneumothorax_is_an_empty_outline(login, owner, image):
    response = post(login(owner), image, png(np.zeros((image.height, image.width), np.uint8)))
    assert response.status_code == 201 and response.json()["empty"] is True
    assert CorrectedOutline.objects.get().empty
    page = login(owner).get(reverse("cases:detail", args=[image.case_id])).content.decode()
    assert ": no pneumothorax" in page


def test_a_page_without_a_correction_says_the_outline_is_the_models(login, owner, image):
    page = login(owner).get(reverse("cases:detail", args=[image.case_id])).content.decode()
    assert "nobody has corrected it" in page and 'data-has-outline="0"' in page
    assert login(owner).get(outline_url(image)).status_code == 404  # nothing to serve yet


def bad_inputs(image):
    grey = drawn(image)
    grey[0, 0] = 128
    colour = np.zeros((image.height, image.width, 3), np.uint8)
    colour[10:20, 10:20] = (255, 0, 0)
    jpeg = io.BytesIO()
    Image.fromarray(drawn(image)).save(jpeg, format="JPEG")
    whole = png(drawn(image))
    return {
        "wrong size": (png(np.zeros((image.height, image.width + 1), np.uint8)), "film's size"),
        "not a PNG": (jpeg.getvalue(), "not a PNG"),
        "not binary": (png(grey), "binary"),
        "in colour": (png(colour, "RGB"), "black and white"),
        "truncated": (whole[: len(whole) // 2], "could not be read"),
        "too large": (b"\x89PNG\r\n\x1a\n" + bytes(outlines.MAX_BYTES), "larger than"),
    }


@pytest.mark.parametrize("case", ["wrong size", "not a PNG", "not binary", "in colour",
                                  "truncated", "too large"])
def test_bad_pngs_are_refused_with_the_reason(login, owner, image, case):
    data, reason = bad_inputs(image)[case]
    response = post(login(owner), image, data)
    assert response.status_code == 400 and reason in response.json()["error"]
    assert not CorrectedOutline.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.OUTLINE_CORRECTED).exists()
    assert not [n for n in files.case_folder_files(image.case_id) if "/outline-" in n]


def test_a_post_without_the_file_is_refused(login, owner, image):
    response = login(owner).post(outline_url(image), {})
    assert response.status_code == 400 and "mask" in response.json()["error"]


def test_a_film_without_a_result_cannot_be_corrected(login, owner):
    queued = CaseFactory(owner=owner).images.get()
    response = post(login(owner), queued, png(drawn(queued)))
    assert response.status_code == 400 and "once the analysis is done" in response.json()["error"]


def test_owner_teammate_and_admin_may_correct_a_stranger_gets_404(login, make_user, administrator):
    owner, mate, stranger = make_user("owner"), make_user("mate"), make_user("stranger")
    TeamFactory(name="Ward 3", members=[owner, mate])
    image = CaseFactory(owner=owner, done=True).images.get()
    for user, version in ((owner, 1), (mate, 2), (administrator, 3)):
        response = post(login(user), image, png(drawn(image)))
        assert response.status_code == 201 and response.json()["version"] == version
        assert login(user).get(outline_url(image)).status_code == 200
    assert post(login(stranger), image, png(drawn(image))).status_code == 404
    assert login(stranger).get(outline_url(image)).status_code == 404
    assert CorrectedOutline.objects.count() == 3
    latest = CorrectedOutline.objects.order_by("-version").first()
    assert latest.created_by == administrator


def test_a_post_needs_its_csrf_token(owner, image):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert post(client, image, png(drawn(image))).status_code == 403


def test_deleting_the_case_deletes_its_outlines_files(login, owner, image, django_capture_on_commit_callbacks):
    post(login(owner), image, png(drawn(image)))
    name = CorrectedOutline.objects.get().mask.name
    assert files.exists(name)
    with django_capture_on_commit_callbacks(execute=True):
        delete_case(owner, Case.objects.get(pk=image.case_id), None)
    assert not files.exists(name) and not CorrectedOutline.objects.exists()


def test_a_backup_requires_the_outlines_files(login, owner, image):
    from webapp.backups.sources import media_files

    post(login(owner), image, png(drawn(image)))
    required, _ = media_files("default")
    assert CorrectedOutline.objects.get().mask.name in required


# --- the training folder -------------------------------------------------------------------

@pytest.fixture
def feedback(owner, other, login):
    """Four films: present and outlined, present without an outline, absent (no drawing),
    readers who disagree; and one outlined "no pneumothorax" without a review."""
    made = {name: CaseFactory(owner=owner, done=True, extension=ext).images.get()
            for name, ext in (("outlined", "dcm"), ("label_only", "png"), ("absent", "jpg"),
                              ("disputed", "png"))}
    made["drawn_empty"] = CaseFactory(owner=owner, predictor=StubPredictor(0.2, False)).images.get()
    Case.objects.filter(pk=made["outlined"].case_id).update(patient_key="a" * 64)
    ReviewFactory(reviewer=owner, image=made["outlined"])
    ReviewFactory(reviewer=owner, image=made["label_only"])
    ReviewFactory(reviewer=owner, image=made["absent"], verdict="disagree", true_label="absent")
    ReviewFactory(reviewer=owner, image=made["disputed"])
    ReviewFactory(reviewer=other, image=made["disputed"], true_label="absent")
    client = login(owner)
    assert post(client, made["outlined"], png(drawn(made["outlined"]))).status_code == 201
    empty = np.zeros((made["drawn_empty"].height, made["drawn_empty"].width), np.uint8)
    assert post(client, made["drawn_empty"], png(empty)).status_code == 201
    return made


def test_the_export_writes_the_layout_that_ml_reads(tmp_path, feedback):
    out = tmp_path / "feedback"
    call_command("export_feedback", "--out-dir", str(out))
    with open(out / "labels.csv", newline="", encoding="utf-8") as handle:
        rows = {row["image_id"]: row for row in csv.DictReader(handle)}
    ids = {name: str(image.pk) for name, image in feedback.items()}
    assert set(rows) == {ids["outlined"], ids["label_only"], ids["absent"], ids["drawn_empty"]}

    outlined = rows[ids["outlined"]]
    assert (outlined["has_pneumothorax"], outlined["has_mask"], outlined["label_source"],
            outlined["outline_version"]) == ("1", "1", "review", "1")
    assert outlined["patient_id"] == "a" * 64 and outlined["model_version"] == "stub-1"
    assert np.array_equal(pixels((out / outlined["mask"]).read_bytes()), drawn(feedback["outlined"]))
    label_only = rows[ids["label_only"]]
    assert (label_only["mask"], label_only["has_mask"], label_only["has_pneumothorax"]) == ("", "0", "1")
    assert label_only["patient_id"] == f"case-{feedback['label_only'].case_id}"
    absent = rows[ids["absent"]]
    assert (absent["has_pneumothorax"], absent["has_mask"]) == ("0", "1")
    assert not pixels((out / absent["mask"]).read_bytes()).any()
    assert (rows[ids["drawn_empty"]]["has_pneumothorax"], rows[ids["drawn_empty"]]["label_source"]) == ("0", "outline")

    # the films: the pixels the model reads, as PNG, at the film's size; never a DICOM
    for name in ("outlined", "absent"):
        film = Image.open(out / rows[ids[name]]["image"])
        assert film.format == "PNG" and film.size == (feedback[name].width, feedback[name].height)
        assert np.array_equal(np.asarray(film.convert("L")), pixels(files.read(feedback[name].preview.name)))
    assert not list(out.rglob("*.dcm"))

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "pneumothorax-feedback" and manifest["format_version"] == 1
    assert manifest["counts"] == {"images": 4, "positive": 2, "negative": 2, "with_mask": 3,
                                  "label_only": 1, "corrected_outlines": 2,
                                  "skipped_conflicting": 1, "skipped_unlabelled": 0}
    assert manifest["model_versions"] == {"stub-1": 4}
    assert manifest["images"][ids["outlined"]] == {"model_version": "stub-1", "outline_version": 1}

    # as ml.train --feedback and ml.evaluate read it (ml.training.feedback)
    films, read_manifest = load_site_films(out)
    assert read_manifest == manifest
    samples = {s.image_id: s for s in films}
    assert set(samples) == set(rows)
    sample = samples[ids["outlined"]]
    assert sample.has_mask and sample.has_pneumothorax and sample.patient_id == "a" * 64
    assert sample.load_mask(feedback["outlined"].height, feedback["outlined"].width).sum() > 0
    assert not samples[ids["label_only"]].has_mask
    with pytest.raises(ValueError, match="no outline"):
        samples[ids["label_only"]].load_mask(16, 16)

    event = AuditEvent.objects.get(action=Action.EXPORT)
    assert event.detail["what"] == "feedback-folder" and event.detail["counts"]["images"] == 4


def test_an_outline_that_contradicts_the_label_leaves_the_film_out(tmp_path, login, owner, feedback):
    image = feedback["label_only"]  # reviewed present: an empty outline contradicts it
    post(login(owner), image, png(np.zeros((image.height, image.width), np.uint8)))
    call_command("export_feedback", "--out-dir", str(tmp_path / "out"))
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert str(image.pk) not in manifest["images"] and manifest["counts"]["skipped_conflicting"] == 2


def test_the_export_refuses_a_folder_in_use_and_mixed_options(tmp_path, feedback):
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "labels.csv").write_text("x")
    with pytest.raises(CommandError, match="not an empty folder"):
        call_command("export_feedback", "--out-dir", str(tmp_path / "used"))
    with pytest.raises(CommandError, match="without --out"):
        call_command("export_feedback", "--out-dir", str(tmp_path / "new"), "--out", "x.csv")
    assert not AuditEvent.objects.filter(action=Action.EXPORT).exists()
