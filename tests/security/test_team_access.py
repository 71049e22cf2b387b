"""Teams (issue 11): a case belongs to its uploader's team, and teammates see it through every
page, file and API endpoint; a stranger, or a member of another team, gets 404 (never 403: that
would confirm the case exists). Seeing is not deleting: a teammate's delete is refused (403),
only the uploader (or an administrator) deletes.

One test per role and endpoint, in four roles: the owner and a teammate (both in Ward 3), a
stranger in no team, and a member of another team (ICU). The case is a finished DICOM case, so
that every file kind, the DICOM SEG and SC included, exists for those who may see it."""

import pytest
from django.urls import reverse

from tests.support.factories import CaseFactory, TeamFactory
from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import Case

pytestmark = pytest.mark.django_db

SEES = {"owner": True, "teammate": True, "stranger": False, "other_team": False}
ROLES = list(SEES)
PAGE_FILES = ("original", "preview", "mask", "overlay")
API_FILES = (*PAGE_FILES, "dicom-seg", "dicom-sc", "dicom-sr")
DICOM_FILES = {"original", "dicom-seg", "dicom-sc", "dicom-sr"}  # the input is a DICOM


@pytest.fixture
def people(make_user):
    users = {role: make_user(role) for role in ROLES}
    TeamFactory(name="Ward 3", members=[users["owner"], users["teammate"]])
    TeamFactory(name="ICU", members=[users["other_team"]])
    return users


@pytest.fixture
def case(people):
    """A finished DICOM case of the owner's, in Ward 3: their only team, so their default."""
    return CaseFactory(owner=people["owner"], done=True)


@pytest.fixture
def client_as(login, people):
    return lambda role: login(people[role])


def expected(role, seen=200):
    return seen if SEES[role] else 404


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_hidden(response, case):
    """A 404 that does not even name the case."""
    assert response.status_code == 404
    assert str(case.pk) not in body(response).decode(errors="replace")


def test_the_case_is_in_the_uploaders_team(case):
    assert case.team.name == "Ward 3"


# --- pages -----------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ROLES)
def test_case_page(client_as, case, role):
    response = client_as(role).get(reverse("cases:detail", args=[case.pk]))
    assert response.status_code == expected(role)
    if not SEES[role]:
        assert_hidden(response, case)


@pytest.mark.parametrize("role", ROLES)
def test_case_status_json(client_as, case, role):
    response = client_as(role).get(reverse("cases:status", args=[case.pk]))
    assert response.status_code == expected(role)
    if SEES[role]:
        assert response.json()["images"][0]["status"] == "done"


@pytest.mark.parametrize("kind", PAGE_FILES)
@pytest.mark.parametrize("role", ROLES)
def test_page_image_file(client_as, case, role, kind):
    image = case.images.get()
    response = client_as(role).get(reverse("cases:image_file", args=[case.pk, image.pk, kind]))
    assert response.status_code == expected(role), kind
    if SEES[role]:
        assert len(body(response)) > 1000
    else:
        assert_hidden(response, case)


@pytest.mark.parametrize("role", ROLES)
def test_case_list_page(client_as, case, role):
    page = client_as(role).get(reverse("cases:list"))
    assert page.status_code == 200
    assert (str(case.pk) in page.content.decode()) is SEES[role]


PAGE_DELETE = {"owner": 302, "teammate": 403, "stranger": 404, "other_team": 404}


@pytest.mark.parametrize("role", ROLES)
def test_page_delete(client_as, case, role):
    response = client_as(role).post(reverse("cases:delete", args=[case.pk]))
    assert response.status_code == PAGE_DELETE[role]
    deleted = role == "owner"
    assert Case.objects.filter(pk=case.pk).exists() is not deleted
    assert AuditEvent.objects.filter(action=Action.DELETE).exists() is deleted


# --- API -------------------------------------------------------------------------------------

def api_url(case, *path):
    return "/".join([f"/api/v1/cases/{case.pk}", *map(str, path)]) + "/"


@pytest.mark.parametrize("role", ROLES)
def test_api_case_detail(client_as, case, role):
    response = client_as(role).get(api_url(case))
    assert response.status_code == expected(role)
    if SEES[role]:
        assert response.json()["team"] == "Ward 3"
        assert response.json()["owner"] == "owner"
    else:
        assert_hidden(response, case)


@pytest.mark.parametrize("role", ROLES)
def test_api_image_detail(client_as, case, role):
    image = case.images.get()
    response = client_as(role).get(api_url(case, "images", image.pk))
    assert response.status_code == expected(role)
    if not SEES[role]:
        assert_hidden(response, case)


@pytest.mark.parametrize("kind", API_FILES)
@pytest.mark.parametrize("role", ROLES)
def test_api_image_file(client_as, case, role, kind):
    image = case.images.get()
    response = client_as(role).get(api_url(case, "images", image.pk, kind))
    assert response.status_code == expected(role), kind
    if SEES[role]:
        content = body(response)
        if kind in DICOM_FILES:
            assert content[128:132] == b"DICM", kind
        else:
            assert content.startswith(b"\x89PNG"), kind
    else:
        assert_hidden(response, case)


@pytest.mark.parametrize("role", ROLES)
def test_api_case_list(client_as, case, role):
    response = client_as(role).get("/api/v1/cases/")
    assert response.status_code == 200
    listed = {c["id"] for c in response.json()["results"]}
    assert (str(case.pk) in listed) is SEES[role]


API_DELETE = {"owner": 204, "teammate": 403, "stranger": 404, "other_team": 404}


@pytest.mark.parametrize("role", ROLES)
def test_api_delete(client_as, case, role):
    response = client_as(role).delete(api_url(case))
    assert response.status_code == API_DELETE[role]
    deleted = role == "owner"
    assert Case.objects.filter(pk=case.pk).exists() is not deleted
    if role == "teammate":
        assert "uploader or an administrator" in response.json()["detail"]


# --- membership is live, a case without a team is private -------------------------------------

def test_a_member_who_leaves_the_team_no_longer_sees_its_cases(client_as, people, case):
    case.team.members.remove(people["teammate"])
    assert client_as("teammate").get(reverse("cases:detail", args=[case.pk])).status_code == 404
    assert client_as("owner").get(reverse("cases:detail", args=[case.pk])).status_code == 200


def test_a_case_of_an_uploader_without_a_team_is_theirs_alone(client_as, people):
    lone = CaseFactory(owner=people["stranger"])
    assert lone.team is None
    for role in ("owner", "teammate", "other_team"):
        assert client_as(role).get(api_url(lone)).status_code == 404, role
    assert client_as("stranger").get(api_url(lone)).json()["team"] is None


def test_an_owned_case_is_listed_once_whatever_the_size_of_its_team(client_as, people, case,
                                                                    make_user):
    """The team is a subquery, not a join through its members (which would repeat the case)."""
    case.team.members.add(*(make_user(f"nurse-{n}") for n in range(3)))
    response = client_as("owner").get("/api/v1/cases/")
    assert [c["id"] for c in response.json()["results"]] == [str(case.pk)]
    assert response.json()["count"] == 1


# --- the admin -------------------------------------------------------------------------------

def test_administrators_manage_teams_in_the_admin(login, administrator, people, case):
    from webapp.accounts.models import Team

    client, ward = login(administrator), case.team
    for url in (reverse("admin:accounts_team_changelist") + "?q=teammate",
                reverse("admin:accounts_team_change", args=[ward.pk]),
                reverse("admin:accounts_user_change", args=[people["teammate"].pk])):
        response = client.get(url)
        assert response.status_code == 200 and "Ward 3" in response.content.decode(), url
    response = client.post(reverse("admin:accounts_team_add"),
                           {"name": "Radiology", "members": [people["stranger"].pk]})
    assert response.status_code == 302
    assert list(Team.objects.get(name="Radiology").members.all()) == [people["stranger"]]
    # Case.team is PROTECT: a team that still has cases is not deleted; one without cases is.
    for team in (ward, Team.objects.get(name="Radiology")):
        client.post(reverse("admin:accounts_team_delete", args=[team.pk]), {"post": "yes"})
    assert list(Team.objects.values_list("name", flat=True)) == ["ICU", "Ward 3"]


def test_clinicians_cannot_manage_teams(client_as):
    response = client_as("owner").get(reverse("admin:accounts_team_changelist"))
    assert response.status_code == 302 and "login" in response["Location"]


# --- the reading room's pages and endpoints: report, worklist JSON, reviews -----------------

@pytest.mark.parametrize("role", ROLES)
def test_printable_report(client_as, case, role):
    response = client_as(role).get(reverse("cases:report", args=[case.pk]))
    if SEES[role]:
        assert response.status_code == 200 and "Pneumothorax triage report" in response.content.decode()
    else:
        assert_hidden(response, case)


@pytest.mark.parametrize("role", ROLES)
def test_worklist_json(client_as, case, role):
    rows = client_as(role).get(reverse("cases:worklist_json")).json()["rows"]
    assert (str(case.pk) in {row["id"] for row in rows}) is SEES[role]


@pytest.mark.parametrize("role", ROLES)
def test_review_form_post(client_as, case, role):
    from webapp.reviews.models import Review

    image = case.images.get()
    response = client_as(role).post(reverse("reviews:review", args=[case.pk, image.pk]),
                                    {"verdict": "disagree", "true_label": "absent", "comment": ""})
    if SEES[role]:
        assert response.status_code == 302
        assert Review.objects.filter(image=image, reviewer__username=role).exists()
        assert AuditEvent.objects.filter(action=Action.REVIEW, username=role).count() == 1
    else:
        assert_hidden(response, case)
        assert not Review.objects.exists() and not AuditEvent.objects.filter(action=Action.REVIEW).exists()


@pytest.mark.parametrize("role", ROLES)
def test_reviews_api(client_as, case, role):
    image = case.images.get()
    url = api_url(case, "images", image.pk, "reviews")
    client = client_as(role)
    posted = client.post(url, {"verdict": "agree", "true_label": "present"},
                         content_type="application/json")
    listed = client.get(url)
    if SEES[role]:
        assert posted.status_code == 201 and listed.status_code == 200
    else:
        assert_hidden(posted, case)
        assert_hidden(listed, case)
