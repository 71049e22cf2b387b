"""The outline editor in a real browser (Debian's chromium through Playwright): starting from the
model's outline, draw with the brush, erase part of it, draw and undo, save, reload: the page
says who corrected it, and the outline read back through its endpoint has the drawn pixels
(and, above them, the model's outline it started from), not the erased or undone ones. No accessibility
violation (axe-core), no Content-Security-Policy violation, no script error."""

import io

import numpy as np
import pytest
from django.urls import reverse
from PIL import Image

from tests.e2e.test_csp_browser import watched_page
from tests.support.browser import MASKS_DRAWN, axe_violations, chromium, log_in
from tests.support.data import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def film(clinician):
    """A finished one-image case (a shared PNG, 1024 × 1024; the stub outlines rows 100-300,
    columns 150-350)."""
    from tests.e2e.conftest import finished_case
    from tests.support.factories import UploadFactory

    return finished_case(clinician, [UploadFactory(extension="png")]).images.get()


def stroke(page, points):
    """Press, move through ``points`` (film pixels), release, on the film as drawn now."""
    canvas = page.locator("[data-viewer-role=overlay-canvas]")
    box = canvas.bounding_box()
    x, y, width, _ = map(float, page.get_attribute("[data-viewer]", "data-film").split())
    natural = 1024
    at = [(box["x"] + x + fx * width / natural, box["y"] + y + fy * width / natural) for fx, fy in points]
    page.mouse.move(*at[0])
    page.mouse.down()
    for point in at[1:]:
        page.mouse.move(*point, steps=8)
    page.mouse.up()


def test_draw_erase_undo_save_and_reload(live_server, film):
    with chromium() as browser:
        page = watched_page(browser)
        log_in(page, live_server.url)
        page.goto(live_server.url + reverse("cases:detail", args=[film.case_id]))
        page.wait_for_function(MASKS_DRAWN, arg=1)
        assert "nobody has corrected it" in page.inner_text("[data-outline-role=summary]")

        page.click("text=Correct the outline")
        page.wait_for_selector("[data-outline-editor][data-editing='1']")
        page.locator("[data-viewer-role=overlay-canvas]").scroll_into_view_if_needed()
        page.eval_on_selector("[data-outline-role=size]",  # a range input: set, then say so
                              "e => { e.value = '60'; e.dispatchEvent(new Event('input')); }")
        stroke(page, [(300, 700), (700, 700)])                     # brush: a band at y 700
        page.click("[data-outline-tool=eraser]")
        assert page.get_attribute("[data-outline-tool=eraser]", "aria-pressed") == "true"
        stroke(page, [(500, 640), (500, 760)])                     # eraser: a gap at x 500
        page.click("[data-outline-tool=brush]")
        stroke(page, [(300, 900), (700, 900)])                     # drawn, then undone
        page.click("[data-outline-action=undo]")
        assert axe_violations(page) == []
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "outline-editor.png"))
        page.click("[data-outline-action=save]")
        page.wait_for_function("() => document.querySelector('[data-outline-role=message]')"
                               ".textContent === 'Saved as version 1.'")

        page.reload()
        page.wait_for_selector("[data-outline-editor][data-has-outline='1']")
        assert "Outline corrected by dr-browser" in page.inner_text("[data-outline-role=summary]")
        url = live_server.url + reverse("reviews:outline", args=[film.case_id, film.pk])
        response = page.request.get(url)  # the page's session: its access check passes
        assert response.status == 200
        mask = np.asarray(Image.open(io.BytesIO(response.body())).convert("L"))
        assert mask.shape == (1024, 1024) and set(np.unique(mask)) <= {0, 255}
        assert mask[700, 320] == mask[700, 680] == 255          # the brush
        assert mask[700, 500] == 0                               # the eraser
        assert mask[900, 500] == 0                               # undone
        # Above the strokes, the model's outline it started from (the stub's, or a real worker's
        # where the session has one up: tests/e2e/conftest.py).
        model = page.request.get(live_server.url + reverse(
            "cases:image_file", args=[film.case_id, film.pk, "mask"]))
        model_mask = np.asarray(Image.open(io.BytesIO(model.body())).convert("L"))
        assert np.array_equal(mask[:560], model_mask[:560])
        assert mask[500, 900] == 0

        page.click("text=Correct the outline")  # opens on the saved outline, not the model's
        page.wait_for_function("() => document.querySelector('[data-outline-role=message]')"
                               ".textContent === 'Editing the latest corrected outline.'")
        assert page.evaluate("window.__violations") == [] and page.errors == []
