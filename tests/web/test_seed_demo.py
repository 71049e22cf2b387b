"""``manage.py seed_demo`` (issue 25): the demo clinician with real films of the shared subset in
their worklist, through the real submission path; idempotent; and a clear one-line start without
the shared data."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from tests.support.data import SHARED_DATA
from webapp.accounts.models import User
from webapp.cases.models import Case, JobStatus
from webapp.cases.services import demo

pytestmark = pytest.mark.django_db


def seed(*args: str) -> str:
    out = StringIO()
    call_command("seed_demo", "--data", str(SHARED_DATA), *args, stdout=out)
    return out.getvalue()


def test_films_are_held_out_dicoms_of_both_kinds_one_per_patient():
    films = demo.choose_films(SHARED_DATA)
    assert len(films) == demo.POSITIVES + demo.NEGATIVES
    assert sum(f.positive for f in films) == demo.POSITIVES
    assert [f.reference for f in films] == [f"demo-{n:02d}" for n in range(1, len(films) + 1)]
    assert all(f.path.suffix == ".dcm" and f.path.is_file() for f in films)
    assert films == demo.choose_films(SHARED_DATA)  # the same films every time


def test_seed_fills_the_demo_worklist_through_the_submission_path(client):
    output = seed()
    assert f"Demo log-in: user demo, password {demo.DEFAULT_PASSWORD}" in output
    user = User.objects.get(username=demo.USERNAME)
    assert user.role == "clinician" and user.check_password(demo.DEFAULT_PASSWORD)
    assert list(user.teams.values_list("name", flat=True)) == [demo.TEAM]

    cases = Case.objects.filter(owner=user).order_by("client_reference")
    assert [c.client_reference for c in cases] == [f.reference for f in demo.choose_films(SHARED_DATA)]
    for case in cases:
        image = case.images.get()
        assert image.source_format == "dicom" and image.original.storage.exists(image.original.name)
        assert image.job.status in (JobStatus.QUEUED, JobStatus.DONE)
        assert case.team.name == demo.TEAM

    client.force_login(user)
    worklist = client.get(reverse("cases:worklist_json")).json()
    assert worklist["count"] == len(cases)


def test_a_second_run_adds_nothing():
    seed()
    first = set(Case.objects.values_list("pk", flat=True))
    output = seed()
    assert "0 film(s) added" in output and "7 already there" in output
    assert set(Case.objects.values_list("pk", flat=True)) == first
    assert User.objects.filter(username=demo.USERNAME).count() == 1


def test_a_chosen_password_is_set_and_then_kept():
    seed()
    assert "password another-long-demo-one" in seed("--password", "another-long-demo-one")
    output = seed()  # as scripts/run --demo runs it: the chosen password stays
    assert "password the one set earlier with --password" in output
    assert User.objects.get(username=demo.USERNAME).check_password("another-long-demo-one")
    with pytest.raises(CommandError, match="the password is refused"):
        seed("--password", "12345678")


def test_an_administrator_named_demo_is_left_alone():
    admin = User.objects.create_user(demo.USERNAME, password="an-admins-own-pw-1", role="admin")
    with pytest.raises(CommandError, match="is an administrator"):
        seed()
    assert not Case.objects.exists()
    admin.refresh_from_db()
    assert admin.check_password("an-admins-own-pw-1") and not admin.teams.exists()


def test_without_the_shared_data_it_says_so_and_starts_empty(tmp_path):
    out = StringIO()
    call_command("seed_demo", "--data", str(tmp_path / "absent"), stdout=out)  # no SystemExit
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "no shared SIIM-ACR subset at" in lines[0], lines
    assert not User.objects.filter(username=demo.USERNAME).exists()
    assert not Case.objects.exists()


def test_production_settings_refuse_the_published_password(settings):
    settings.SESSION_COOKIE_SECURE = True
    with pytest.raises(CommandError, match="production settings"):
        seed()
    with pytest.raises(CommandError, match="choose the demo password"):
        seed("--force")
    assert not User.objects.filter(username=demo.USERNAME).exists()
