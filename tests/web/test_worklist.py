"""The case list as a triage worklist: ordered by suspicion on request, over the user's own
cases only, with cases still waiting for a result after every analysed one."""

import pytest
from django.urls import reverse

from tests.support.factories import CaseFactory
from tests.support.stubs import StubPredictor

pytestmark = pytest.mark.django_db


@pytest.fixture
def analysed_case():
    """A case of ``user`` whose job ran through the real pipeline with a fixed answer."""
    def make(user, probability, positive):
        return CaseFactory(owner=user, predictor=StubPredictor(probability, positive))
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


def test_newest_order_is_the_history(login, owner, worklist):
    cases, _ = worklist
    page = login(owner).get(reverse("cases:list"), {"order": "newest"}).content.decode()
    assert listed(page, cases) == list(reversed(cases))


def test_worklist_default_is_urgency_waiting_on_top_then_urgent_then_the_rest(login, owner, worklist):
    """Issue 11: waiting cases visible at the top with their state, then positive (or review
    first), then by probability; an unknown order falls back to the same."""
    cases, stranger = worklist
    for query in ({}, {"order": "no-such-order"}, {"order": "urgency"}):
        page = login(owner).get(reverse("cases:list"), query).content.decode()
        assert listed(page, cases) == ["pending", "positive 0.95", "positive 0.70",
                                       "negative high", "negative low"]
        assert str(stranger.pk) not in page


def test_review_first_outranks_a_plain_negative_of_higher_probability(login, owner, analysed_case):
    flagged = analysed_case(owner, 0.20, False)
    from webapp.cases.models import Job

    Job.objects.filter(image__case=flagged).update(review_first=True)  # above the review threshold
    plain = analysed_case(owner, 0.45, False)
    page = login(owner).get(reverse("cases:list")).content.decode()
    assert listed(page, {"flagged": flagged, "plain": plain}) == ["flagged", "plain"]
    assert "Review first" in page


@pytest.mark.parametrize("query, expected", [
    ({"result": "positive"}, ["positive 0.95", "positive 0.70"]),
    ({"result": "negative"}, ["negative high", "negative low"]),
    ({"status": "queued"}, ["pending"]),
    ({"status": "done", "result": "negative"}, ["negative high", "negative low"]),
])
def test_worklist_filters(login, owner, worklist, query, expected):
    cases, _ = worklist
    page = login(owner).get(reverse("cases:list"), query).content.decode()
    shown = [name for name, case in cases.items() if str(case.pk) in page]
    assert sorted(shown) == sorted(expected)


def test_worklist_date_filter_and_bad_dates(login, owner, worklist):
    cases, _ = worklist
    client = login(owner)
    page = client.get(reverse("cases:list"), {"created_after": "2999-01-01"}).content.decode()
    assert not any(str(case.pk) in page for case in cases.values())
    today = next(iter(cases.values())).created_at.date().isoformat()
    page = client.get(reverse("cases:list"), {"created_before": today}).content.decode()
    assert all(str(case.pk) in page for case in cases.values())  # "until" includes the day
    response = client.get(reverse("cases:list"), {"created_after": "not-a-date"})
    assert response.status_code == 200 and "Enter a valid date" in response.content.decode()


def test_worklist_search_by_reference(login, owner):
    wanted = CaseFactory(owner=owner, client_reference="ward-7/bed-3")
    other = CaseFactory(owner=owner, client_reference="ward-9/bed-1")
    page = login(owner).get(reverse("cases:list"), {"q": "WARD-7"}).content.decode()
    assert str(wanted.pk) in page and str(other.pk) not in page


def test_worklist_json_has_the_same_rows_and_never_a_strangers(login, owner, worklist):
    cases, stranger = worklist
    body = login(owner).get(reverse("cases:worklist_json")).json()
    by_id = {str(case.pk): name for name, case in cases.items()}
    assert [by_id[row["id"]] for row in body["rows"]] == ["pending", "positive 0.95", "positive 0.70",
                                                        "negative high", "negative low"]
    assert body["count"] == 5 and str(stranger.pk) not in body["html"]
    assert body["rows"][1]["review_first"] is True and body["rows"][1]["status"] == "done"


def test_worklist_pages(login, owner, make_case):
    for _ in range(27):
        make_case(owner)
    client = login(owner)
    first = client.get(reverse("cases:worklist_json")).json()
    second = client.get(reverse("cases:worklist_json"), {"page": 2}).json()
    assert (first["pages"], len(first["rows"]), len(second["rows"])) == (2, 25, 2)
    assert not {r["id"] for r in first["rows"]} & {r["id"] for r in second["rows"]}


def test_worklist_needs_login(client):
    for name in ("cases:list", "cases:worklist_json"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_api_lists_cases_by_suspicion(owner, worklist):
    from rest_framework.test import APIClient

    from tests.support.tokens import issue_key

    cases, stranger = worklist
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_key(owner)}")
    body = client.get("/api/v1/cases/", {"order": "suspicion"}).json()
    ids = [row["id"] for row in body["results"]]
    by_id = {str(case.pk): name for name, case in cases.items()}
    assert [by_id[i] for i in ids] == ["positive 0.95", "positive 0.70", "negative high",
                                       "negative low", "pending"]
    assert client.get("/api/v1/cases/", {"order": "sideways"}).status_code == 400
