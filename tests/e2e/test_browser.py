"""A clinician in a real browser (Debian's chromium through Playwright): log in, upload a real
X-ray, wait for the overlay to replace the X-ray, save a screenshot to test-artifacts/."""

import pytest

from tests.support.browser import OVERLAYS_LOADED, chromium, log_in
from tests.support.data import ARTIFACTS, SHARED_IMAGES, subset_image, subset_images

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(clinician):
    with chromium() as browser:
        yield browser.new_page(viewport={"width": 1280, "height": 1400})


def test_login_upload_and_see_overlay(celery_worker_process, live_server, browser_page):
    page = browser_page
    page.goto(f"{live_server.url}/cases/new/")
    assert "/login/" in page.url  # login is required
    page.fill("input[name=username]", "dr-browser")
    page.fill("input[name=password]", "a-long-test-password-1")
    page.click("button[type=submit]")
    page.wait_for_url("**/cases/new/")

    page.set_input_files("input[name=images]", str(subset_image("jpg")))
    page.click("#upload-submit")
    page.wait_for_selector("#case")

    overlay = page.wait_for_selector("img[data-overlay-loaded='1']", timeout=120_000)
    assert "/overlay.png" in overlay.get_attribute("src")
    assert overlay.evaluate("img => img.naturalWidth") == 1024
    assert page.text_content("[data-role=status]") == "done"
    assert "probability" in page.inner_text("[data-role=result]")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "case-overlay.png"), full_page=True)
    assert (ARTIFACTS / "case-overlay.png").stat().st_size > 10_000


def test_a_six_image_case_shows_every_overlay_after_each_reload(celery_worker_process, live_server,
                                                               browser_page):
    """The browser fetches a case's images in parallel, and each fetch writes an audit row:
    every one of them must arrive and decode, on the first load and on reloads."""
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/cases/new/")
    dicoms = subset_images("dcm")[:6]
    page.set_input_files("input[name=images]", [str(path) for path in dicoms])
    page.click("#upload-submit")
    page.wait_for_selector("#case")
    page.wait_for_function(OVERLAYS_LOADED, arg=6, timeout=240_000)
    for _ in range(3):
        page.reload()
        page.wait_for_function(OVERLAYS_LOADED, arg=6,
                               timeout=30_000)  # onload: fetched and decoded (a 503 fires onerror)
        pictures = page.eval_on_selector_all(
            "img[data-role=picture]", "imgs => imgs.map(i => [i.complete, i.naturalWidth, i.src])")
        assert len(pictures) == 6
        assert all(complete and width > 0 for complete, width, _ in pictures), pictures
        assert all("/overlay.png" in src for _, _, src in pictures), pictures


# --- no worker needed below: the data is made in-process before the browser starts ----------

def test_api_docs_render_and_request_nothing_from_another_host(live_server, clinician):
    """Redoc and Swagger UI draw the schema from this site's files alone. The Redoc bundle asks
    for a logo on cdn.redoc.ly: the page's Content-Security-Policy must stop that in the
    browser (Playwright reports the failure as "csp"), before anything goes on the network."""
    from urllib.parse import urlsplit

    site = urlsplit(live_server.url).netloc

    def elsewhere(request):
        parts = urlsplit(request.url)
        return parts.scheme in ("http", "https") and parts.netloc != site

    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        attempted, blocked = [], []
        page.on("request", lambda r: attempted.append(r.url) if elsewhere(r) else None)
        page.on("requestfailed", lambda r: blocked.append(r.url)
                if elsewhere(r) and "csp" in (r.failure or "").lower() else None)
        log_in(page, live_server.url)
        page.goto(f"{live_server.url}/api/redoc/")
        page.wait_for_selector("[data-section-id]", timeout=60_000)  # Redoc drew the schema
        page.wait_for_load_state("networkidle")
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".opblock", timeout=60_000)  # Swagger UI drew the operations
        page.wait_for_load_state("networkidle")
        assert sorted(attempted) == sorted(blocked), "a request left for another host"


# --- the reading room (issue 11): worklist, viewer, review -----------------------------------

def canvas_signature(page, selector="[data-viewer-role=overlay-canvas]"):
    """A sum of the viewer canvas's red channel: changes when the outline layer is drawn."""
    return page.eval_on_selector(selector, """canvas => {
        const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
        let red = 0, green = 0;
        for (let i = 0; i < data.length; i += 4) { red += data[i]; green += data[i + 1]; }
        return red - green;
    }""")


# A large right pneumothorax (7.7% of the film) that the shipped model calls positive (0.97).
CLEAR_POSITIVE = SHARED_IMAGES / "1.2.276.0.7230010.3.1.4.8323329.6319.1517875197.587372.dcm"


def test_reading_room_worklist_viewer_and_review(celery_worker_process, live_server, browser_page):
    page = browser_page
    log_in(page, live_server.url)
    page.goto(f"{live_server.url}/cases/")
    page.wait_for_selector("#worklist")

    # A colleague's upload in another tab: the worklist shows it, then its result, unreloaded.
    upload = page.context.browser.new_page()  # a second browser session, logged in on its own
    log_in(upload, live_server.url)
    upload.goto(f"{live_server.url}/cases/new/")
    upload.set_input_files("input[name=images]", str(CLEAR_POSITIVE))
    upload.click("#upload-submit")
    upload.wait_for_selector("#case")
    case_url = upload.url
    upload.close()
    page.evaluate("window.__notReloaded = true")
    page.wait_for_selector("#worklist tbody tr[data-case-id] .status-done", timeout=120_000)
    assert page.evaluate("window.__notReloaded") is True  # the row arrived by polling
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reading-room-worklist.png"), full_page=True)

    # The viewer: the mask layer arrives, zoom by keyboard and button, overlay off and on, opacity.
    page.goto(case_url)
    viewer = page.wait_for_selector("[data-viewer][data-mask-loaded='1']", timeout=60_000)
    zoom_before = float(viewer.get_attribute("data-zoom"))
    page.focus("[data-viewer-role=stage]")
    page.keyboard.press("+")
    page.click("[data-viewer-action=zoom-in]")
    assert float(viewer.get_attribute("data-zoom")) > zoom_before * 1.5
    page.screenshot(path=str(ARTIFACTS / "reading-room-viewer-zoomed.png"), full_page=True)
    page.click("[data-viewer-action=reset]")
    with_outline = canvas_signature(page)
    page.uncheck("[data-viewer-role=overlay-toggle]")
    without_outline = canvas_signature(page)
    assert with_outline != without_outline  # the layer was drawn, and hiding it removed it
    page.check("[data-viewer-role=overlay-toggle]")
    page.select_option("[data-viewer-role=style]", "filled")
    page.eval_on_selector("[data-viewer-role=opacity]",
                          "el => { el.value = 100; el.dispatchEvent(new Event('input')); }")
    opaque = canvas_signature(page)
    page.eval_on_selector("[data-viewer-role=opacity]",
                          "el => { el.value = 10; el.dispatchEvent(new Event('input')); }")
    assert canvas_signature(page) != opaque  # opacity changes what is drawn
    page.screenshot(path=str(ARTIFACTS / "reading-room-viewer-overlay.png"), full_page=True)

    # A disagreement, recorded and audited.
    form = page.wait_for_selector("[data-role=review-form]:not([hidden])")
    form.query_selector("input[name=verdict][value=disagree]").check()
    form.query_selector("input[name=true_label][value=absent]").check()
    form.query_selector("textarea[name=comment]").fill("Skin fold, no pleural line.")
    form.query_selector("button[type=submit]").click()
    page.wait_for_selector("[data-role=review-entry]")
    assert "Skin fold, no pleural line." in page.inner_text("[data-role=reviews]")
    page.screenshot(path=str(ARTIFACTS / "reading-room-review.png"), full_page=True)
    page.goto(f"{live_server.url}/audit/")
    assert "Result reviewed" in page.inner_text("main")
    page.screenshot(path=str(ARTIFACTS / "reading-room-audit.png"), full_page=True)
