"""manage.py export_feedback: the CSV's rows, as ml.training.datasets.load_feedback reads them."""

import csv
import datetime as dt
import io
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ml.core.reading import read_xray
from ml.training.datasets import load_dataset, load_feedback
from tests.support.factories import CaseFactory
from tests.support.reviews import ReviewFactory
from webapp.audit.models import Action, AuditEvent
from webapp.reviews.export import FIELDS
from webapp.reviews.models import Review

pytestmark = pytest.mark.django_db


def media_root(settings) -> Path:
    return Path(str(settings.PRIVATE_MEDIA_ROOT))


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def reviewed(owner, other):
    """Three images of the owner: present (two agreeing readers), absent, uncertain."""
    present, absent, uncertain = (CaseFactory(owner=owner, done=True, extension=e).images.get()
                                  for e in ("dcm", "png", "jpg"))
    ReviewFactory(reviewer=owner, image=present, comment="=HYPERLINK(\"x\")")
    ReviewFactory(reviewer=other, image=present, comment="Apical rim")
    ReviewFactory(reviewer=owner, image=absent, verdict="disagree", true_label="absent")
    ReviewFactory(reviewer=owner, image=uncertain, true_label="uncertain")
    return {"present": present, "absent": absent, "uncertain": uncertain}


def test_the_csv_holds_every_review_and_ml_reads_it(tmp_path, settings, reviewed):
    out = tmp_path / "feedback.csv"
    call_command("export_feedback", "--out", str(out))
    rows = read_rows(out)
    assert tuple(rows[0]) == FIELDS and len(rows) == 4
    present = [r for r in rows if r["image_id"] == str(reviewed["present"].pk)]
    assert {r["reviewer"] for r in present} == {"owner", "other"}
    first = present[0]
    assert first["reviewer"] == "owner"  # oldest first
    image = reviewed["present"]
    assert first["file"] == image.original.name and not first["file"].startswith("/")
    assert (media_root(settings) / first["file"]).is_file()
    assert (first["case_id"], first["source_format"]) == (str(image.case_id), "dicom")
    assert (first["model_version"], first["probability"], first["positive"]) == ("stub-1", "0.9", "1")
    assert (first["true_label"], first["verdict"]) == ("present", "agree")
    assert first["comment"] == "'=HYPERLINK(\"x\")"  # never a formula in a spreadsheet
    assert dt.datetime.fromisoformat(first["reviewed_at"]) == Review.objects.get(
        image=image, reviewer__username="owner").reviewed_at

    samples = load_feedback(out, media_root(settings))
    by_id = {s.image_id: s for s in samples}
    assert set(by_id) == {str(reviewed["present"].pk), str(reviewed["absent"].pk)}  # uncertain: skipped
    assert by_id[str(reviewed["present"].pk)].has_pneumothorax
    assert not by_id[str(reviewed["absent"].pk)].has_pneumothorax
    for sample in samples:
        assert not sample.has_mask and read_xray(sample.image_path).width > 0
        with pytest.raises(ValueError, match="no outline"):
            sample.load_mask(16, 16)
    assert by_id[str(image.pk)].patient_id == str(image.case_id)
    assert [s.image_id for s in load_dataset("feedback", out, media_root=media_root(settings))] == \
        [s.image_id for s in samples]
    event = AuditEvent.objects.get(action=Action.EXPORT)
    assert event.user is None and event.detail["rows"] == 4 and event.detail["what"] == "feedback"


def test_readers_who_disagree_leave_no_label(tmp_path, owner, other, reviewed):
    ReviewFactory(reviewer=other, image=reviewed["absent"], true_label="present")
    # an "uncertain" beside a definite label does not cancel it
    ReviewFactory(reviewer=other, image=reviewed["uncertain"], true_label="absent")
    out = tmp_path / "feedback.csv"
    call_command("export_feedback", "--out", str(out), "--absolute-paths")
    assert all(r["file"].startswith("/") for r in read_rows(out))
    labels = {s.image_id: s.has_pneumothorax for s in load_feedback(out)}  # absolute: no media root
    assert labels == {str(reviewed["present"].pk): True, str(reviewed["uncertain"].pk): False}


def test_since_keeps_the_reviews_given_from_that_day(reviewed):
    old = timezone.now() - dt.timedelta(days=30)
    Review.objects.filter(image=reviewed["absent"]).update(reviewed_at=old)
    stdout = io.StringIO()
    call_command("export_feedback", "--since", (old + dt.timedelta(days=1)).date().isoformat(),
                 stdout=stdout)
    rows = list(csv.DictReader(io.StringIO(stdout.getvalue())))
    assert len(rows) == 3 and str(reviewed["absent"].pk) not in {r["image_id"] for r in rows}
    with pytest.raises(CommandError, match="YYYY-MM-DD"):
        call_command("export_feedback", "--since", "last week")


def test_the_command_says_it_exports_everyone():
    from webapp.reviews.management.commands.export_feedback import Command

    assert Command.help.startswith("ADMINISTRATORS ONLY") and "every clinician" in Command.help
