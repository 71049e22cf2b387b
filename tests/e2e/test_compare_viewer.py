"""The compare view in a real browser (Debian's chromium through Playwright): the prior film and
this one side by side, each with its outline; zooming (wheel, keys) or dragging one moves the
other the same way, in coordinates normalised to each film, for films of different sizes; no
accessibility violations (axe-core), and no Content-Security-Policy violation or script error."""

import io

import pytest
from django.urls import reverse

from tests.e2e.test_csp_browser import watched_page
from tests.support.browser import axe_violations, chromium, log_in
from tests.support.data import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

BOTH_READY = ("() => document.querySelectorAll('[data-compare] [data-viewer][data-viewer-ready=\"1\"]"
              "[data-mask-loaded=\"1\"]').length === 2")
VIEWS = "els => els.map(e => [e.dataset.view, e.dataset.film])"


@pytest.fixture
def compared(clinician):
    """A prior film (a shared X-ray at 1024 × 1024) and a later one of the same patient at
    another size (700 × 900), both finished and outlined, the later one compared with the prior."""
    from PIL import Image

    from tests.e2e.conftest import finished_case
    from tests.support.data import subset_image
    from tests.support.factories import UploadFactory

    source = subset_image("png")
    buffer = io.BytesIO()
    Image.open(source).convert("L").resize((700, 900)).save(buffer, format="PNG")
    prior = finished_case(clinician, [UploadFactory(extension="png")]).images.get()
    current = finished_case(clinician, [UploadFactory(name="later.png", data=buffer.getvalue())]).images.get()
    current.job.comparison = {
        "prior_image_id": str(prior.pk), "prior_case_id": str(prior.case_id), "prior_date": "2026-12-02",
        "trend": "larger", "area_fraction": 0.06, "prior_area_fraction": 0.03,
        "area_fraction_change": 0.03, "rim_depth_mm": None, "prior_rim_depth_mm": None,
        "rim_depth_change_mm": None}
    current.job.save(update_fields=["comparison"])
    return current


def views(page):
    """Each film's [normalised view "zoom u v", drawn film "x y width height"]: prior, current."""
    return page.eval_on_selector_all("[data-compare] [data-viewer]", VIEWS)


def test_zoom_and_pan_in_step(live_server, compared):
    with chromium() as browser:
        page = watched_page(browser)  # records CSP violations and console errors
        log_in(page, live_server.url)
        page.goto(live_server.url + reverse("cases:detail", args=[compared.case_id]))
        page.click("text=Compare side by side")
        page.wait_for_function(BOTH_READY)
        assert "Larger than on 2 December 2026" in page.inner_text("[data-role=comparison]")
        (prior, prior_film), (current, current_film) = views(page)
        assert prior == current == "1.000 0.500 0.500"  # both fitted

        # The wheel over the prior zooms both, about the pointer: off-centre, so the centre moves.
        stage = page.locator("[data-compare-film=prior] [data-viewer-role=stage]")
        box = stage.bounding_box()
        page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
        for _ in range(3):
            page.mouse.wheel(0, -100)
        page.wait_for_function("() => document.querySelector('[data-compare-film=prior]').dataset.view !== '1.000 0.500 0.500'")
        (prior, prior_film), (current, current_film) = views(page)
        zoom, u, v = map(float, prior.split())
        assert zoom > 1.4 and u < 0.5 and v < 0.5
        assert current == prior
        assert current_film != prior_film  # different sizes: matched by fraction, not by pixel
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "compare-view.png"))

        # Dragging this film pans the prior the same way.
        stage = page.locator("[data-compare-film=current] [data-viewer-role=stage]")
        box = stage.bounding_box()
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] / 2 - 80, box["y"] + box["height"] / 2 - 60, steps=4)
        page.mouse.up()
        (prior_after, _), (current_after, _) = views(page)
        assert current_after == prior_after
        assert float(current_after.split()[1]) > u and float(current_after.split()[2]) > v

        # The keyboard: + zooms both, 0 fits both.
        stage.focus()
        page.keyboard.press("+")
        (prior_key, _), (current_key, _) = views(page)
        assert prior_key == current_key and float(prior_key.split()[0]) > float(current_after.split()[0])
        page.keyboard.press("0")
        assert [view for view, _ in views(page)] == ["1.000 0.500 0.500"] * 2

        assert axe_violations(page) == []
        assert page.evaluate("window.__violations") == [] and page.errors == []
