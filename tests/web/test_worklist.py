"""The case list as a triage worklist: ordered by suspicion on request, over the user's own
cases only, with cases still waiting for a result after every analysed one."""

import pytest
from django.urls import reverse

from tests.web.conftest import StubPredictor
from webapp.cases.services.pipeline import analyse_job

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysed_case(make_case):
    """A case of ``user`` whose job ran through the real pipeline with a fixed answer."""
    def make(user, probability, positive):
        case = make_case(user)
        assert analyse_job(case.images.get().job.pk, StubPredictor(probability, positive)) == "done"
        return case
    return make


@pytest.fixture
def worklist(owner, other, make_case, analysed_case):
    """The owner's cases in upload order, and a stranger's case more suspicious than any."""
    cases = {
        "negative low": analysed_case(owner, 0.10, False),
        "positive 0.70": analysed_case(owner, 0.70, True),
        "pending": make_case(owner),
        "negative high": analysed_case(owner, 0.45, False),
        "positive 0.95": analysed_case(owner, 0.95, True),
    }
    stranger = analysed_case(other, 0.99, True)
    return cases, stranger


def listed(page: str, cases: dict) -> list[str]:
    """The names of ``cases`` in the order their ids appear on the page."""
    where = {name: page.find(str(case.pk)) for name, case in cases.items()}
    assert all(position >= 0 for position in where.values()), where
    return sorted(where, key=where.get)


def test_suspicion_order_puts_positive_cases_first_and_pending_last(login, owner, worklist):
    cases, stranger = worklist
    page = login(owner).get(reverse("cases:list"), {"order": "suspicion"}).content.decode()
    assert listed(page, cases) == ["positive 0.95", "positive 0.70", "negative high",
                                   "negative low", "pending"]
    assert str(stranger.pk) not in page


def test_default_order_is_the_history_newest_first(login, owner, worklist):
    cases, _ = worklist
    for query in ({}, {"order": "no-such-order"}):
        page = login(owner).get(reverse("cases:list"), query).content.decode()
        assert listed(page, cases) == list(reversed(cases))


def test_api_lists_cases_by_suspicion(owner, worklist):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    cases, stranger = worklist
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=owner).key}")
    body = client.get("/api/v1/cases/", {"order": "suspicion"}).json()
    ids = [row["id"] for row in body["results"]]
    by_id = {str(case.pk): name for name, case in cases.items()}
    assert [by_id[i] for i in ids] == ["positive 0.95", "positive 0.70", "negative high",
                                       "negative low", "pending"]
    assert client.get("/api/v1/cases/", {"order": "sideways"}).status_code == 400
