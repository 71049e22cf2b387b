"""Dates at the calendar's ends in the worklist's filters (the page, its JSON, the API's case
list) answer as filters, never a 500: "until 9999-12-31" is no upper bound, "from 0001-01-01"
no lower one, and a bound that leaves datetime's range once in UTC (a zone or an offset off
UTC) is clamped to the calendar's end, which selects the same cases; a date that is not on the
calendar is a 400 with the reason."""

import pytest

from tests.support.factories import CaseFactory

pytestmark = pytest.mark.django_db

FAR_PAGE_FILTERS = [{"created_before": "9999-12-31"}, {"created_after": "0001-01-01"},
                    {"created_after": "0001-01-01", "created_before": "9999-12-31"}]


@pytest.fixture
def case(owner):
    return CaseFactory(owner=owner)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Pacific/Kiritimati"])
@pytest.mark.parametrize("params", FAR_PAGE_FILTERS)
def test_worklist_page_and_json_take_the_calendars_ends(login, owner, case, settings, zone, params):
    settings.TIME_ZONE = zone
    client = login(owner)
    page = client.get("/cases/", params)
    assert page.status_code == 200 and str(case.pk) in page.content.decode()
    rows = client.get("/cases/worklist.json", params)
    assert rows.status_code == 200
    assert [row["id"] for row in rows.json()["rows"]] == [str(case.pk)]


def test_worklist_from_the_last_day_lists_nothing(login, owner, case):
    rows = login(owner).get("/cases/worklist.json", {"created_after": "9999-12-31"})
    assert rows.status_code == 200 and rows.json()["rows"] == []


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Pacific/Kiritimati"])
@pytest.mark.parametrize("params", [{"created_before": "9999-12-31T23:59:59"},
                                    {"created_before": "9999-12-31"},
                                    {"created_before": "9999-12-31T23:59:59-05:00"},
                                    {"created_after": "0001-01-01T00:00:00"},
                                    {"created_after": "0001-01-01T00:00:00+05:00"},
                                    {"created_after": "0001-01-01"}])
def test_api_case_list_takes_the_calendars_ends(login, owner, case, settings, zone, params):
    settings.TIME_ZONE = zone
    response = login(owner).get("/api/v1/cases/", params)
    assert response.status_code == 200, response.content
    assert [item["id"] for item in response.json()["results"]] == [str(case.pk)]


@pytest.mark.parametrize("params", [{"created_before": "99999-01-01"},
                                    {"created_after": "0000-12-31"},
                                    {"created_before": "9999-12-32T00:00:00"}])
def test_api_datetime_off_the_calendar_is_a_400_with_the_reason(login, owner, params):
    response = login(owner).get("/api/v1/cases/", params)
    assert response.status_code == 400
    field = next(iter(params))
    assert any(line.startswith(f"{field}: ") for line in response.json()["errors"])
