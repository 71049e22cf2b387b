"""The pages' layout in a real browser (Debian's chromium through Playwright), at a phone's size
(390 x 844) and a desktop's (1366 x 900): nothing wider than the screen, the worklist's call
visible without scrolling sideways, the whole film on the screen after "Fit", and the reader's
zoom kept when the window changes size (a phone's address bar, a turned screen)."""

import pytest
from django.urls import reverse

from tests.support.browser import DESKTOP, MASKS_DRAWN, PHONE, chromium, log_in
from tests.support.data import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

# The box of an element, and of the film inside a viewer's canvas (viewer.js writes where it drew
# the film as data-film: x y width height, in canvas pixels), in the viewport's coordinates.
BOX = "el => { const r = el.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }"
FILM = """viewer => {
    const r = viewer.querySelector('canvas').getBoundingClientRect();
    const [x, y, w, h] = viewer.dataset.film.split(' ').map(Number);
    return [r.left + x, r.top + y, r.left + x + w, r.top + y + h];
}"""
SMALL_PHONE = {"width": 320, "height": 640}
SETTLED = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def inside(box, width, height):
    left, top, right, bottom = box  # to a pixel: the page scrolls by fractions of one
    return left >= -1 and top >= -1 and right <= width + 1 and bottom <= height + 1


def test_pages_fit_a_phone_screen(live_server, long_named_case):
    case = long_named_case
    paths = [reverse("cases:list"), reverse("cases:detail", args=[case.pk]), reverse("cases:upload"),
             reverse("cases:report", args=[case.pk]), reverse("cases:model_versions"), reverse("audit")]
    with chromium() as browser:
        # A small phone too: a page that fits 320 px keeps fitting 390 where fonts run wider.
        for screen in (SMALL_PHONE, PHONE):
            page = browser.new_page(viewport=screen, device_scale_factor=3)
            log_in(page, live_server.url)
            for path in paths:
                page.goto(live_server.url + path)
                page.wait_for_load_state("networkidle")
                page.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; })")
                width = page.evaluate("document.documentElement.scrollWidth")
                assert width <= screen["width"], (path, width)

        # The worklist: a card per case, its call and status on the screen, no sideways scroll.
        page.goto(live_server.url + reverse("cases:list"))
        row = page.wait_for_selector(f"#worklist tr[data-case-id='{case.pk}']")
        row.scroll_into_view_if_needed()
        for cell in ("td.col-result", "td.col-status"):
            box = row.query_selector(cell).evaluate(BOX)
            assert inside(box, PHONE["width"], PHONE["height"]), (cell, box)  # on the screen
        assert "Pneumothorax suspected" in row.query_selector("td.col-result").inner_text()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "worklist-phone.png"), full_page=True)

        # The case page: the result sentence and the film start on the first screen.
        page.goto(live_server.url + reverse("cases:detail", args=[case.pk]))
        viewer = page.wait_for_selector("[data-viewer][data-mask-loaded='1']")
        page.screenshot(path=str(ARTIFACTS / "case-phone.png"), full_page=True)
        result = page.query_selector("[data-role=result]")
        assert "probability" in result.inner_text()
        assert result.evaluate(BOX)[3] <= PHONE["height"]
        assert viewer.query_selector("canvas").evaluate(BOX)[1] < PHONE["height"] - 100
        film = viewer.evaluate(FILM)
        assert film[0] >= 0 and film[2] <= PHONE["width"] + 0.5, film
        # As sharp as the screen: as many canvas pixels as the phone has device pixels.
        density = viewer.query_selector("canvas").evaluate("c => c.width / c.getBoundingClientRect().width")
        assert density == pytest.approx(3, abs=0.02)


def test_fit_shows_the_whole_film_and_a_resize_keeps_the_zoom(live_server, multi_image_case):
    with chromium() as browser:
        page = browser.new_page(viewport=DESKTOP)
        log_in(page, live_server.url)
        page.goto(live_server.url + reverse("cases:detail", args=[multi_image_case.pk]))
        page.wait_for_function(MASKS_DRAWN, arg=3)
        viewer = page.query_selector_all("[data-viewer]")[1]  # the second image, below the fold
        section = page.query_selector_all("section.image")[1]

        viewer.query_selector("[data-viewer-action=reset]").click()
        page.evaluate(SETTLED)
        film = viewer.evaluate(FILM)
        assert inside(film, DESKTOP["width"], DESKTOP["height"]), film
        assert film[3] - film[1] > DESKTOP["height"] / 2  # fitted, not shrunk to a stamp
        # The result sentence beside the film, on the screen with it.
        result = section.query_selector("[data-role=result]")
        assert "probability" in result.inner_text()
        assert inside(result.evaluate(BOX), DESKTOP["width"], DESKTOP["height"])
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "case-desktop-fit.png"))

        # Zoomed in, then the window changes size: the zoom stays.
        viewer.query_selector("[data-viewer-action=zoom-in]").click()
        viewer.query_selector("[data-viewer-action=zoom-in]").click()
        zoom = viewer.get_attribute("data-zoom")
        for size in ({"width": 1200, "height": 800}, DESKTOP, {"width": 1366, "height": 840}, PHONE, DESKTOP):
            page.set_viewport_size(size)
            page.evaluate(SETTLED)
            assert viewer.get_attribute("data-zoom") == zoom, size

        # A fitted film is fitted again when the window changes size: whole, within the new width.
        viewer.query_selector("[data-viewer-action=reset]").click()
        page.set_viewport_size(PHONE)
        page.evaluate(SETTLED)
        film = viewer.evaluate(FILM)
        assert film[0] >= 0 and film[2] <= PHONE["width"] + 0.5, film
        assert float(viewer.get_attribute("data-zoom")) < float(zoom)
