"""The comparison with the prior film as the case page shows it (comparison_display): one
sentence per trend, with the site's dates; the prior's link, film and compare view only for a
viewer who may see the prior (owner, teammate and stranger). ``Job.comparison`` is set here
directly, in the keys everyone agreed (services.comparison writes it when a job finishes)."""

import pytest
from django.urls import reverse

from tests.support.factories import CaseFactory, TeamFactory
from webapp.audit.models import Action, AuditEvent
from webapp.cases.services.comparison_display import comparison_text, day_text

PRIOR_DATE = "2026-12-02"


def comparison(trend, **values):
    keys = {"prior_image_id": "8f0d3b1e-6a55-4bb4-9d0c-2d3f9e1f2a10",
            "prior_case_id": "1c6a2f0e-7b0a-4a37-9c0f-52b1a8d7e3c4", "prior_date": PRIOR_DATE,
            "trend": trend, "area_fraction": None, "prior_area_fraction": None,
            "area_fraction_change": None, "rim_depth_mm": None, "prior_rim_depth_mm": None,
            "rim_depth_change_mm": None}
    return {**keys, **values}


# --- the words -------------------------------------------------------------------------------

@pytest.mark.parametrize("given, expected", [
    (comparison("larger", rim_depth_mm=18.2, prior_rim_depth_mm=9.4, area_fraction=0.06,
                prior_area_fraction=0.03),
     "Larger than on 2 December 2026: rim depth 18 mm, was 9 mm"),
    (comparison("smaller", area_fraction=0.012, prior_area_fraction=0.034),
     "Smaller than on 2 December 2026: area 1.2% of the image, was 3.4%"),
    # Rim depth in one film only (no pixel spacing in the other): the area, which both have.
    (comparison("larger", rim_depth_mm=18.0, area_fraction=0.006, prior_area_fraction=0.0021),
     "Larger than on 2 December 2026: area 0.60% of the image, was 0.21%"),
    # The trend is decided on the area: a rim depth that went the other way is not shown.
    (comparison("larger", rim_depth_mm=12.0, prior_rim_depth_mm=14.0, area_fraction=0.06,
                prior_area_fraction=0.03),
     "Larger than on 2 December 2026: area 6.0% of the image, was 3.0%"),
    (comparison("smaller", rim_depth_mm=9.4, prior_rim_depth_mm=9.2, area_fraction=0.02,
                prior_area_fraction=0.03),
     "Smaller than on 2 December 2026: area 2.0% of the image, was 3.0%"),
    (comparison("unchanged", rim_depth_mm=17.0, prior_rim_depth_mm=18.0, area_fraction=0.031,
                prior_area_fraction=0.030),
     "Unchanged since 2 December 2026 (within the measurement noise): rim depth 17 mm, was 18 mm"),
    (comparison("new", area_fraction=0.02, prior_area_fraction=0.0),
     "New since 2 December 2026 (no pneumothorax then)"),
    (comparison("resolved", area_fraction=0.0, prior_area_fraction=0.034, prior_rim_depth_mm=9.0),
     "Resolved since 2 December 2026 (rim depth 9 mm then)"),
    (comparison("resolved", area_fraction=0.0, prior_area_fraction=0.034),
     "Resolved since 2 December 2026 (area 3.4% of the image then)"),
    (comparison("unchanged", area_fraction=0.031, prior_area_fraction=0.030),
     "Unchanged since 2 December 2026 (within the measurement noise): area 3.1% of the image, was 3.0%"),
    (comparison("unchanged", area_fraction=0.0, prior_area_fraction=0.0),
     "Unchanged since 2 December 2026: no pneumothorax then or now"),
])
def test_each_trend_in_words(given, expected):
    assert comparison_text(given) == expected


def test_dates_in_the_sites_words_and_a_bad_date_is_not_shown():
    assert day_text("2027-01-09") == "9 January 2027"
    assert day_text("2026-13-40") is None
    assert comparison_text(comparison("new", prior_date="yesterday")) == \
        "New since the prior film (no pneumothorax then)"
    assert comparison_text(comparison("larger", prior_date=None)) == "Larger than on the prior film"


@pytest.mark.parametrize("stored, expected", [
    (None, ""), ({}, ""), ([], ""), ("larger", ""), ({"trend": "bigger"}, ""),
    # Sizes that are not numbers are left out, not shown as "True mm".
    (comparison("larger", rim_depth_mm="18", prior_rim_depth_mm=True), "Larger than on 2 December 2026"),
])
def test_a_comparison_of_another_shape_is_not_described_and_breaks_nothing(stored, expected):
    assert comparison_text(stored) == expected


# --- who sees the prior ----------------------------------------------------------------------

@pytest.fixture
def films(make_user):
    """The owner's prior film in ward A, then a film of the same patient in ward B (the patient
    moved wards; the owner is in both). The teammate is in ward B only: they see the new film,
    not the prior. The stranger is in neither."""
    owner, teammate = make_user("owner"), make_user("teammate")
    ward_a, ward_b = TeamFactory(name="Ward A", members=[owner]), TeamFactory(name="Ward B", members=[owner, teammate])
    prior = CaseFactory(owner=owner, team=ward_a, done=True).images.get()
    current = CaseFactory(owner=owner, team=ward_b, done=True).images.get()
    current.job.comparison = comparison(
        "larger", prior_image_id=str(prior.pk), prior_case_id=str(prior.case_id),
        rim_depth_mm=18.0, prior_rim_depth_mm=9.0, area_fraction=0.06, prior_area_fraction=0.03)
    current.job.save(update_fields=["comparison"])
    return {"owner": owner, "teammate": teammate, "stranger": make_user("stranger"),
            "prior": prior, "current": current}


def urls(image):
    return {"case": reverse("cases:detail", args=[image.case_id]),
            "report": reverse("cases:report", args=[image.case_id]),
            "status": reverse("cases:status", args=[image.case_id]),
            "compare": reverse("cases:compare", args=[image.case_id, image.pk]),
            "preview": reverse("cases:image_file", args=[image.case_id, image.pk, "preview"]),
            "mask": reverse("cases:image_file", args=[image.case_id, image.pk, "mask"])}


WORDS = "Larger than on 2 December 2026: rim depth 18 mm, was 9 mm"


def test_owner_sees_the_words_the_prior_link_and_both_films_side_by_side(login, films):
    client, current, prior = login(films["owner"]), urls(films["current"]), urls(films["prior"])
    page = client.get(current["case"]).content.decode()
    assert WORDS in page
    assert f'href="{prior["case"]}#image-{films["prior"].pk}"' in page
    assert f'href="{current["compare"]}"' in page
    assert WORDS in client.get(current["report"]).content.decode()
    line = client.get(current["status"]).json()["images"][0]["comparison_line"]
    assert line == {"trend": "larger", "text": WORDS, "compare_url": current["compare"],
                    "prior_url": f'{prior["case"]}#image-{films["prior"].pk}'}

    compare = client.get(current["compare"])
    assert compare.status_code == 200
    html = compare.content.decode()
    assert WORDS in html
    # The prior on the left, this film on the right, each with its outline (both positive).
    assert html.index(f'data-image-url="{prior["preview"]}"') < html.index(f'data-image-url="{current["preview"]}"')
    assert f'data-mask-url="{prior["mask"]}"' in html and f'data-mask-url="{current["mask"]}"' in html
    assert "Prior film, 2 December 2026" in html
    for url in (prior["preview"], prior["mask"], current["preview"]):
        response = client.get(url)
        assert response.status_code == 200 and b"".join(response.streaming_content).startswith(b"\x89PNG")


def test_compare_view_writes_a_view_row_for_each_case_shown(login, films):
    login(films["owner"]).get(urls(films["current"])["compare"])
    rows = AuditEvent.objects.filter(user=films["owner"], action=Action.VIEW_CASE, detail__page="compare")
    assert sorted(rows.values_list("object_id", flat=True)) == sorted(
        [str(films["current"].case_id), str(films["prior"].case_id)])


def test_teammate_who_may_not_see_the_prior_gets_the_words_without_link_or_film(login, films):
    client, current, prior = login(films["teammate"]), urls(films["current"]), urls(films["prior"])
    page = client.get(current["case"])
    assert page.status_code == 200
    html = page.content.decode()
    assert WORDS in html
    assert str(films["prior"].case_id) not in html and str(films["prior"].pk) not in html
    assert current["compare"] not in html
    line = client.get(current["status"]).json()["images"][0]["comparison_line"]
    assert line == {"trend": "larger", "text": WORDS, "prior_url": None, "compare_url": None}
    # Nor by guessing: the compare view and every file of the prior answer 404.
    for url in (current["compare"], prior["case"], prior["preview"], prior["mask"]):
        assert client.get(url).status_code == 404, url


def test_stranger_gets_404_for_the_case_its_comparison_and_the_prior(login, films):
    client = login(films["stranger"])
    for url in [*urls(films["current"]).values(), *urls(films["prior"]).values()]:
        assert client.get(url).status_code == 404, url


def test_no_compare_view_for_a_film_without_a_prior(login, films):
    client = login(films["owner"])
    assert client.get(urls(films["prior"])["compare"]).status_code == 404
    page = client.get(urls(films["prior"])["case"]).content.decode()
    assert 'data-role="comparison" hidden' in page and "Compare side by side" not in page


def test_a_prior_deleted_since_leaves_the_words_without_link(login, films):
    from webapp.cases.services.deletion import delete_case

    delete_case(films["owner"], films["prior"].case, "10.0.0.9")
    client = login(films["owner"])
    html = client.get(urls(films["current"])["case"]).content.decode()
    assert WORDS in html and "Compare side by side" not in html
    assert client.get(urls(films["current"])["compare"]).status_code == 404


def test_a_comparison_made_by_the_pipeline_reads_on_the_page(login, owner):
    """End to end with services.comparison: the same real DICOM (one patient) uploaded twice and
    analysed; the second film's page says it is unchanged since the first, with its links."""
    first = CaseFactory(owner=owner, done=True).images.get()
    second = CaseFactory(owner=owner, done=True).images.get()
    second.job.refresh_from_db()
    assert second.job.comparison["trend"] == "unchanged"
    day = day_text(second.job.comparison["prior_date"])
    html = login(owner).get(urls(second)["case"]).content.decode()
    assert f"Unchanged since {day} (within the measurement noise)" in html
    assert f'href="{urls(second)["compare"]}"' in html and f"#image-{first.pk}" in html
