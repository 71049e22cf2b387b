"""A clinician in a real browser (Debian's chromium through Playwright): log in, upload a real
X-ray, wait for the overlay to replace the X-ray, save a screenshot to test-artifacts/."""

import shutil

import pytest

from tests.conftest import ARTIFACTS, subset_image

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def clinician(make_user):
    # Created before Playwright starts: its sync API runs an event loop in this thread, and
    # Django refuses database calls from inside one.
    return make_user("dr-browser", password="a-long-test-password-1")


@pytest.fixture
def browser_page(clinician):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        try:
            yield page
        finally:
            browser.close()


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
