"""The retention policy (webapp.cases.services.retention), on real uploads through the upload
service, jobs run by the real pipeline service, reviews recorded by the review service, and
files in private storage. Cases are aged by moving ``created_at`` back with ``update()``."""

import io
from datetime import timedelta

import pydicom
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests.support.factories import CaseFactory, TeamFactory, UploadFactory
from tests.support.reviews import ReviewFactory
from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import Case, DeletedCase, JobStatus
from webapp.cases.services import files, results
from webapp.cases.services.jobs import claim_job, fail_job
from webapp.cases.services.retention import apply_retention, scheduled_round

pytestmark = pytest.mark.django_db

RETAIN_30 = override_settings(RETENTION_DAYS=30)


def age(case, days):
    Case.objects.filter(pk=case.pk).update(created_at=timezone.now() - timedelta(days=days))


def case_files(case):
    return files.case_folder_files(case.pk)


def run_command(*args):
    out = io.StringIO()
    call_command("apply_retention", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def reviewed_old_case(owner):
    """A DICOM case of ``owner``'s team, 40 days old, run, reviewed, with its DICOM SEG built
    and a file an earlier run left behind: everything retention has to remove."""
    ward = TeamFactory(name="Ward 9", members=[owner])
    case = CaseFactory(owner=owner, team=ward, done=True, client_reference="ACC-778899")
    image = case.images.get()
    results.result_file(image, "seg")
    files.save(files.result_name(image, "mask", "0ldrun0ldrun"), b"an earlier run's mask")
    ReviewFactory(reviewer=owner, image=image)
    age(case, 40)
    return case


@RETAIN_30
def test_old_case_goes_with_its_files_leaving_tombstone_and_audit_rows(
        reviewed_old_case, owner, django_capture_on_commit_callbacks):
    case = reviewed_old_case
    recent = CaseFactory(owner=owner, done=True)
    ReviewFactory(reviewer=owner, image=recent.images.get())
    names = case_files(case)
    assert len(names) == 6  # original, preview, mask, overlay, SEG, the earlier run's mask
    rows_of_case = AuditEvent.objects.filter(
        object_id__in=[str(case.pk), str(case.images.get().pk)])
    earlier_rows = set(rows_of_case.values_list("pk", flat=True))
    assert {Action.UPLOAD, Action.REVIEW} <= set(rows_of_case.values_list("action", flat=True))

    with django_capture_on_commit_callbacks(execute=True):
        report = apply_retention()

    assert report.deleted == [str(case.pk)] and report.images == 1
    assert not Case.objects.filter(pk=case.pk).exists()
    assert not any(files.exists(name) for name in names)
    assert case_files(case) == []
    assert Case.objects.filter(pk=recent.pk).exists()  # 0 days old
    assert all(files.exists(name) for name in case_files(recent))

    tombstone = DeletedCase.objects.get(case_id=case.pk)
    assert tombstone.team_name == "Ward 9" and tombstone.images == 1
    assert tombstone.reason == "retention: older than 30 days"
    assert tombstone.case_created_at < timezone.now() - timedelta(days=39)
    assert tombstone.first_uploaded_at is not None
    assert tombstone.deleted == {"originals": 1, "previews": 1, "masks": 1, "overlays": 1,
                                 "dicom_results": 1, "other_files": 1, "jobs": 1, "reviews": 1,
                                 "pacs_deliveries": 0}

    row = AuditEvent.objects.get(action=Action.RETENTION_DELETE)
    assert row.object_id == str(case.pk) and row.user is None and row.client_address is None
    assert row.detail["tombstone"] == tombstone.pk and row.detail["reason"] == tombstone.reason
    kept = set(rows_of_case.values_list("pk", flat=True))
    assert earlier_rows < kept  # the case's earlier rows are all still there, and the new one


def test_unset_retention_keeps_everything(reviewed_old_case):
    age(reviewed_old_case, 3650)
    with override_settings(RETENTION_DAYS=None):
        report = apply_retention()
        assert scheduled_round()[0] is None
        assert "Nothing to do" in run_command()
    assert report.days is None and report.deleted == []
    assert Case.objects.filter(pk=reviewed_old_case.pk).exists()
    assert not DeletedCase.objects.exists()


@RETAIN_30
def test_case_awaiting_review_is_kept_until_reviewed(owner, django_capture_on_commit_callbacks):
    case = CaseFactory(owner=owner, done=True)  # a result nobody has read
    age(case, 45)

    report = apply_retention()
    assert report.deleted == [] and report.kept_unreviewed == [str(case.pk)]
    assert Case.objects.filter(pk=case.pk).exists()

    ReviewFactory(reviewer=owner, image=case.images.get(), verdict="disagree", true_label="absent")
    with django_capture_on_commit_callbacks(execute=True):
        report = apply_retention()
    assert report.deleted == [str(case.pk)]
    assert DeletedCase.objects.filter(case_id=case.pk).exists()


@override_settings(RETENTION_DAYS=30, RETENTION_KEEP_UNREVIEWED=False)
def test_unreviewed_case_goes_when_the_setting_says_so(owner):
    case = CaseFactory(owner=owner, done=True)
    age(case, 45)
    assert apply_retention().deleted == [str(case.pk)]


@RETAIN_30
@pytest.mark.parametrize("running", [False, True])
def test_case_with_job_in_flight_is_never_deleted(owner, running):
    case = CaseFactory(owner=owner)  # its job queued
    job = case.images.get().job
    if running:
        assert claim_job(job.pk, "worker@retention-test").status == JobStatus.RUNNING
    age(case, 400)
    with override_settings(RETENTION_KEEP_UNREVIEWED=False):  # not even then
        report = apply_retention()
    assert report.deleted == [] and report.kept_in_flight == [str(case.pk)]
    assert Case.objects.filter(pk=case.pk).exists()


@RETAIN_30
def test_dry_run_deletes_nothing_and_says_what_would_go(reviewed_old_case):
    names = case_files(reviewed_old_case)
    output = run_command("--dry-run")
    assert "Would delete 1 case(s), 1 image(s):" in output
    assert str(reviewed_old_case.pk) in output
    assert Case.objects.filter(pk=reviewed_old_case.pk).exists()
    assert all(files.exists(name) for name in names)
    assert not DeletedCase.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.RETENTION_DELETE).exists()


@RETAIN_30
def test_command_output_and_tombstone_carry_no_patient_identifier(owner):
    upload = UploadFactory(extension="dcm")
    source = pydicom.dcmread(io.BytesIO(upload.read()))
    identifiers = {str(source.get(k, "")) for k in ("PatientName", "PatientID", "AccessionNumber")}
    identifiers = {value for value in identifiers if len(value) > 2}
    assert identifiers  # the shared DICOM names a patient: otherwise this test proves nothing
    case = CaseFactory(owner=owner, uploads=[upload], done=True, client_reference="ACC-445566")
    ReviewFactory(reviewer=owner, image=case.images.get())
    unread = CaseFactory(owner=owner, done=True)
    for old in (case, unread):
        age(old, 31)
    identifiers |= {case.client_reference, case.images.get().original_name, owner.username}

    output = run_command("-v", "2")
    assert f"Deleted 1 case(s), 1 image(s):\n  {case.pk}\n" in output
    assert f"awaiting review (RETENTION_KEEP_UNREVIEWED):\n  {unread.pk}" in output
    tombstone = DeletedCase.objects.get(case_id=case.pk)
    stored = " ".join(str(getattr(tombstone, f.name)) for f in DeletedCase._meta.fields)
    for identifier in identifiers:
        assert identifier not in output and identifier not in stored


def test_bad_settings_and_arguments_are_refused_in_one_line(reviewed_old_case):
    with override_settings(RETENTION_DAYS="thirty"):
        with pytest.raises(CommandError, match="RETENTION_DAYS must be a whole number"):
            call_command("apply_retention", skip_checks=True)
    with override_settings(RETENTION_DAYS=0):
        with pytest.raises(CommandError, match="1 or more"):
            call_command("apply_retention", skip_checks=True)
    with override_settings(RETENTION_DAYS=30), pytest.raises(CommandError, match="--limit"):
        call_command("apply_retention", "--limit", "0")
    assert Case.objects.filter(pk=reviewed_old_case.pk).exists()


@override_settings(RETENTION_DAYS=30, RETENTION_MAX_PER_ROUND=1, RETENTION_EVERY_S=3600)
def test_reconciler_round_deletes_at_most_its_limit_then_comes_back_soon(owner):
    cases = [CaseFactory(owner=owner, extension="png") for _ in range(2)]
    for case in cases:  # a failed job: nothing running, nothing to review
        assert fail_job(case.images.get().job.pk, None, "The stored image file is missing.")
        age(case, 60)
    report, wait = scheduled_round()
    assert len(report.deleted) == 1 and report.more and wait == 0
    report, wait = scheduled_round()
    assert len(report.deleted) == 1 and not report.more and wait == 3600
    out = io.StringIO()
    call_command("reconcile_jobs", stdout=out)  # nothing left: retention writes no line
    assert "retention" not in out.getvalue() and DeletedCase.objects.count() == 2


def test_tombstones_are_read_only_in_the_admin(client, administrator, reviewed_old_case):
    with override_settings(RETENTION_DAYS=30):
        apply_retention()
    tombstone = DeletedCase.objects.get()
    client.force_login(administrator)
    assert client.get(reverse("admin:cases_deletedcase_changelist")).status_code == 200
    change = reverse("admin:cases_deletedcase_change", args=[tombstone.pk])
    assert client.get(change).status_code == 200
    assert client.post(change, {"reason": "x"}).status_code == 403
    assert client.get(reverse("admin:cases_deletedcase_add")).status_code == 403
    delete = reverse("admin:cases_deletedcase_delete", args=[tombstone.pk])
    assert client.get(delete).status_code == 403
