"""Debian's chromium through Playwright, for the browser tests of tests/e2e: how to launch it,
log in, and run axe-core (the accessibility checker) in a page."""

from __future__ import annotations

import shutil
from contextlib import contextmanager

from tests.support.data import REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
PASSWORD = "a-long-test-password-1"  # the clinician fixture's (tests/e2e/conftest.py)

# axe-core from the npm registry, installed by scripts/test into a git-ignored folder.
AXE_VERSION = "4.14.1"
AXE_PREFIX = REPO / "tests" / "e2e" / ".axe"
AXE_SCRIPT = AXE_PREFIX / "node_modules" / "axe-core" / "axe.min.js"


# Predicates for page.wait_for_function, written as functions: a bare expression string is
# evaluated with eval(), which the pages' Content-Security-Policy forbids.
MASKS_DRAWN = "n => document.querySelectorAll('[data-viewer][data-mask-loaded=\"1\"]').length === n"
OVERLAYS_LOADED = "n => document.querySelectorAll(\"img[data-overlay-loaded='1']\").length === n"


@contextmanager
def chromium():
    """A headless chromium; closed on the way out."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page, base_url, username="dr-browser", password=PASSWORD):
    page.goto(f"{base_url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/cases/")


def axe_violations(page) -> list[str]:
    """axe-core's violations on the page as it is now, one line each (impact, rule, where).

    The script is evaluated as source, not added as a <script> tag: the pages' strict
    Content-Security-Policy (no inline scripts) would block a tag."""
    if not AXE_SCRIPT.exists():
        import pytest

        pytest.fail(f"axe-core is missing: scripts/test installs it, or run `npm install --no-save "
                    f"--prefix {AXE_PREFIX.relative_to(REPO)} axe-core@{AXE_VERSION}`")
    page.evaluate(AXE_SCRIPT.read_text())
    found = page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map(v => [v.impact, v.id, v.help,
                                           v.nodes.map(n => n.target.join(' ')).slice(0, 5)]);
    }""")
    return [f"{impact} {rule} ({help_text}): {targets}" for impact, rule, help_text, targets in found]
