import pytest
from django.urls import reverse

from webapp.cases.services.pipeline import analyse_job

pytestmark = pytest.mark.django_db


def test_history_is_newest_first_with_status_and_result(login, owner, make_case, stub_predictor):
    older, newer = make_case(owner), make_case(owner, "png")
    analyse_job(older.images.get().job.pk, stub_predictor)
    page = login(owner).get(reverse("cases:list")).content.decode()
    assert page.index(str(newer.pk)) < page.index(str(older.pk))
    assert "status-queued" in page and "status-done" in page and "Pneumothorax suspected" in page


def test_case_page_polls_status_and_uses_no_external_assets(login, owner, make_case):
    case = make_case(owner)
    page = login(owner).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert reverse("cases:status", args=[case.pk]) in page and "js/case.js" in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_unknown_case_is_404_not_500(login, owner):
    response = login(owner).get("/cases/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert login(owner).get("/cases/not-a-uuid/").status_code == 404


def test_status_json_shape(login, owner, done_case):
    payload = login(owner).get(reverse("cases:status", args=[done_case.pk])).json()
    image = payload["images"][0]
    assert payload["status"] == "done" and payload["positive"] is True
    assert image["overlay_url"].endswith("/overlay.png") and image["mask_url"].endswith("/mask.png")
    assert image["probability"] == 0.9 and image["area_fraction"] > 0


def test_login_page_renders_for_anonymous(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200 and b'name="password"' in response.content


def test_superuser_is_admin_role(db):
    from webapp.accounts.models import Role, User

    user = User.objects.create_superuser("root", "r@example.org", "pw-long-enough-1")
    assert user.role == Role.ADMIN and user.is_staff and user.is_admin_role


# --- narrow screens (a phone is 390 px wide) -------------------------------------------------

def css_rules(css: str) -> dict[str, str]:
    """Selector -> declarations of a plain stylesheet (no nesting; @media blocks flattened)."""
    import re

    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)
    rules = {}
    for selectors, body in re.findall(r"([^{}@]+)\{([^{}]*)\}", css):
        for selector in selectors.split(","):
            rules[" ".join(selector.split())] = rules.get(" ".join(selector.split()), "") + body
    return rules


def stylesheet(client) -> dict[str, str]:
    response = client.get("/static/css/site.css")
    assert response.status_code == 200
    return css_rules(b"".join(response.streaming_content).decode())


def test_long_headings_wrap_and_tables_scroll_in_their_wrapper(client):
    rules = stylesheet(client)
    for heading in ("h1", "h2"):
        assert "overflow-wrap: anywhere" in rules.get(heading, ""), heading
    assert "overflow-x: auto" in rules.get(".table-scroll", "")
    assert "minmax(0" in rules.get("dl.study", "")  # a long UID wraps instead of widening the grid


def test_every_table_sits_in_a_scroll_container(login, owner, administrator, make_case):
    from tests.web.markup import parse

    make_case(owner)
    pages = [login(owner).get(reverse("cases:list")), login(administrator).get(reverse("cases:list")),
             login(administrator).get(reverse("audit"))]
    checked = 0
    for response in pages:
        assert response.status_code == 200
        for table in parse(response.content).find_all("table"):
            wrapper = table.parent
            assert wrapper.tag == "div" and wrapper.has("class", "table-scroll"), response.request["PATH_INFO"]
            # Keyboard users can scroll it too.
            assert wrapper.attrs.get("tabindex") == "0" and wrapper.attrs.get("role") == "region"
            checked += 1
    assert checked == 3


# --- the case page: study panel, result, live region -----------------------------------------

def test_study_panel_shows_dates_and_names_as_words(login, owner, make_case):
    from tests.web.markup import parse

    case = make_case(owner)  # the shared data's DICOM: StudyDate 19010101, PatientSex M, PA
    page = parse(login(owner).get(reverse("cases:detail", args=[case.pk])).content)
    panel = next(page.find_all("dl", class_="study"))
    rows = dict(zip((dt.text for dt in panel.find_all("dt")), (dd.text for dd in panel.find_all("dd"))))
    assert rows["Study date"] == "1 January 1901" and rows["Sex"] == "Male"
    assert rows["View"] == "PA (posteroanterior)" and rows["Age"] == "81 years"
    assert "StudyDate" not in rows and "PatientSex" not in rows
    assert "19010101" not in panel.text


def test_status_and_result_are_announced_by_a_polite_live_region(login, owner, make_case):
    from tests.web.markup import parse

    case = make_case(owner)
    page = parse(login(owner).get(reverse("cases:detail", args=[case.pk])).content)
    for role in ("status", "result", "error"):
        element = next(page.find_all(**{"data-role": role}))
        live = [a for a in element.ancestors() if a.attrs.get("aria-live")]
        assert live and live[0].attrs["aria-live"] == "polite", role
        assert live[0].attrs.get("role") == "status" and live[0].attrs.get("aria-atomic") == "true"


def register_stub_model(threshold=0.45):
    from webapp.cases.services.model_versions import register_model_version

    return register_model_version(version="stub-1", encoder="stub", image_size=256,
                                  operating_point={"image_threshold": threshold}, test_figures={})


def test_done_case_page_shows_the_threshold_next_to_the_probability(login, owner, done_case):
    from tests.web.markup import parse

    register_stub_model(0.45)
    client = login(owner)
    page = parse(client.get(reverse("cases:detail", args=[done_case.pk])).content)
    result = next(page.find_all(**{"data-role": "result"})).text
    assert result.startswith("Pneumothorax suspected · probability 0.90 (suspected at ≥ 0.45, "
                             "the model's operating point)"), result
    # The page's script shows the same sentence when the result arrives while it is open.
    image = client.get(reverse("cases:status", args=[done_case.pk])).json()["images"][0]
    assert image["image_threshold"] == 0.45 and image["result_text"] == result


def test_result_of_an_unregistered_model_says_its_threshold_is_unknown(login, owner, done_case):
    page = login(owner).get(reverse("cases:detail", args=[done_case.pk])).content.decode()
    assert "probability 0.90 (the threshold of this model is not recorded)" in page


# --- favicon ---------------------------------------------------------------------------------

def test_favicon_is_served_without_login(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"] in ("image/x-icon", "image/vnd.microsoft.icon")
    assert b"".join(icon.streaming_content)[:4] == b"\x00\x00\x01\x00"  # an ICO file


def test_pages_name_the_site_icon(client):
    from tests.web.markup import parse

    icons = [link.attrs["href"] for link in parse(client.get(reverse("login")).content).find_all("link")
             if "icon" in link.attrs.get("rel", "").split()]
    assert icons and all(client.get(href).status_code == 200 for href in icons)
