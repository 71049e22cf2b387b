"""Which team a new case goes to (issue 11), on the upload page and through the API alike: a
user in several teams may name one of theirs (by id or name); without a choice, their first
team by name; none for a user in no team. Naming a team that is not theirs is refused (400,
with the reason) before any file is read, and nothing is stored."""

import pytest
from django.urls import reverse

from tests.support.factories import TeamFactory
from webapp.cases.models import Case

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams(owner, other):
    """The owner is in Beta and Alpha (Alpha first by name); ICU is someone else's."""
    return {name: TeamFactory(name=name, members=members)
            for name, members in (("Beta", [owner]), ("Alpha", [owner]), ("ICU", [other]))}


def upload_page(login, user, upload_file, **fields):
    return login(user).post(reverse("cases:upload"), {"images": [upload_file()], **fields})


def upload_api(login, user, upload_file, **fields):
    return login(user).post("/api/v1/cases/", {"images": [upload_file()], **fields})


def the_case():
    return Case.objects.select_related("team").get()


# --- the upload page -------------------------------------------------------------------------

def test_page_offers_the_users_teams_first_by_name_selected(login, owner, teams):
    page = login(owner).get(reverse("cases:upload")).content.decode()
    assert '<select name="team"' in page and "ICU" not in page
    assert page.index(">Alpha<") < page.index(">Beta<")
    assert f'value="{teams["Alpha"].pk}" selected' in page


def test_page_has_no_choice_for_a_user_in_one_team(login, other, teams):
    page = login(other).get(reverse("cases:upload")).content.decode()
    assert '<select name="team"' not in page and 'type="hidden" name="team"' in page


def test_page_default_is_the_first_team_by_name(login, owner, teams, upload_file):
    assert upload_page(login, owner, upload_file).status_code == 302
    assert the_case().team == teams["Alpha"]


def test_page_chosen_team_by_id(login, owner, teams, upload_file):
    assert upload_page(login, owner, upload_file, team=teams["Beta"].pk).status_code == 302
    assert the_case().team == teams["Beta"]


def test_page_chosen_team_by_name(login, owner, teams, upload_file):
    assert upload_page(login, owner, upload_file, team="Beta").status_code == 302
    assert the_case().team == teams["Beta"]


def test_page_refuses_someone_elses_team(login, owner, teams, upload_file):
    response = upload_page(login, owner, upload_file, team=teams["ICU"].pk)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Not one of your teams" in page and "yours: Alpha, Beta" in page
    assert not Case.objects.exists()


def test_page_user_without_a_team_makes_a_case_without_one(login, administrator, upload_file):
    assert upload_page(login, administrator, upload_file).status_code == 302
    assert the_case().team is None


# --- the API ---------------------------------------------------------------------------------

def test_api_default_is_the_first_team_by_name(login, owner, teams, upload_file):
    response = upload_api(login, owner, upload_file)
    assert response.status_code == 201 and response.json()["team"] == "Alpha"
    assert the_case().team == teams["Alpha"]


def test_api_chosen_team_by_id(login, owner, teams, upload_file):
    response = upload_api(login, owner, upload_file, team=str(teams["Beta"].pk))
    assert response.status_code == 201 and response.json()["team"] == "Beta"


def test_api_chosen_team_by_name(login, owner, teams, upload_file):
    response = upload_api(login, owner, upload_file, team="Beta")
    assert response.status_code == 201 and the_case().team == teams["Beta"]


@pytest.mark.parametrize("choice", ["ICU", "no such team", "99999999999999999999999"])
def test_api_refuses_a_team_that_is_not_the_users(login, owner, teams, upload_file, choice):
    """The same answer whether the team exists or not: a stranger learns nothing of teams."""
    choice = choice if choice != "ICU" else str(teams["ICU"].pk)
    response = upload_api(login, owner, upload_file, team=choice)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        f"team: Not one of your teams: {choice!r} (yours: Alpha, Beta)."]
    assert not Case.objects.exists()


def test_api_user_in_one_team_may_not_name_another(login, other, teams, upload_file):
    response = upload_api(login, other, upload_file, team="Alpha")
    assert response.status_code == 400 and "yours: ICU" in response.json()["errors"][0]


def test_api_user_without_a_team_makes_a_case_without_one(login, administrator, upload_file):
    response = upload_api(login, administrator, upload_file)
    assert response.status_code == 201 and response.json()["team"] is None


def test_api_idempotent_retry_with_another_team_is_a_different_request(login, owner, teams,
                                                                       upload_file):
    client = login(owner)
    post = lambda team: client.post("/api/v1/cases/", {"images": [upload_file()], "team": team},  # noqa: E731
                                    HTTP_IDEMPOTENCY_KEY="retry-1")
    assert post("Alpha").status_code == 201
    assert post("Alpha").status_code == 200  # replayed
    assert post("Beta").status_code == 422
    assert Case.objects.count() == 1


# --- the service -----------------------------------------------------------------------------

def test_submission_refuses_another_team_before_reading_any_file(owner, teams):
    from webapp.cases.services.submission import submit_case
    from webapp.cases.services.teams import TeamRefused

    class Unreadable:
        name, size = "x.dcm", 10

        def read(self, n=-1):
            raise AssertionError("a file was read")

    with pytest.raises(TeamRefused):
        submit_case(owner, [Unreadable()], "10.0.0.1", team=teams["ICU"])
