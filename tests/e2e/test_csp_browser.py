"""The Content-Security-Policy in a real browser (Debian's chromium, issue 21): every page works
under it and the browser reports no violation and no error in the console, the API docs
included (the Redoc bundle no longer asks cdn.redoc.ly for its logo)."""

import pytest

from tests.support.browser import DESKTOP, PASSWORD, chromium, log_in
from tests.support.two_factor import set_up_in_browser

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

# Installed before any script of the page runs (Playwright's init scripts are not page scripts:
# the policy does not apply to them): every violation the browser reports, as it happens.
RECORD_VIOLATIONS = """
window.__violations = [];
document.addEventListener('securitypolicyviolation', event => {
    window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sourceFile}:${event.lineNumber}`);
});
"""


def watched_page(browser):
    page = browser.new_page(viewport=DESKTOP)
    page.add_init_script(RECORD_VIOLATIONS)
    page.errors = []
    page.on("console", lambda message: page.errors.append(f"{page.url}: {message.text}")
            if message.type == "error" else None)
    page.on("pageerror", lambda error: page.errors.append(f"{page.url}: {error}"))
    return page


def visit(page, url, wait_for="main"):
    page.goto(url)
    page.wait_for_selector(wait_for, timeout=60_000)
    page.wait_for_load_state("networkidle")
    violations = page.evaluate("window.__violations")
    assert violations == [], (url, violations)


@pytest.fixture
def admin_user(make_user):
    admin = make_user("dr-admin", role="admin", password=PASSWORD)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    return admin


def test_pages_run_under_the_policy_without_a_violation(live_server, multi_image_case, admin_user):
    base = live_server.url
    with chromium() as browser:
        page = watched_page(browser)
        visit(page, f"{base}/login/", "form")
        log_in(page, base)
        case = f"{base}/cases/{multi_image_case.pk}/"
        visit(page, f"{base}/cases/", "#worklist")
        visit(page, case, "[data-viewer][data-mask-loaded='1']")  # the viewer's scripts ran
        visit(page, f"{case}report/")
        visit(page, f"{base}/cases/new/")
        visit(page, f"{base}/cases/model/")
        visit(page, f"{base}/audit/")
        visit(page, f"{base}/api/redoc/", "[data-section-id]")  # Redoc drew the schema
        visit(page, f"{base}/api/docs/", ".opblock")  # Swagger UI drew the operations
        # The confirmation before deleting (site.js) asks, and "cancel" keeps the case.
        page.goto(case)
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
        page.click("form[data-confirm] button[type=submit]")
        assert asked == ["Delete this case and its files?"] and page.url == case
        assert page.errors == [], page.errors
        visit(page, f"{base}/accounts/login/")  # a 404 in the site's layout (its own console line)
        assert "Not found" in page.inner_text("h1")

        admin = watched_page(browser)
        log_in(admin, base, username="dr-admin")  # on to the two-factor set-up (?next=/cases/)
        visit(admin, f"{base}/account/two-factor/set-up/", "#two-factor-secret")  # its QR code too
        set_up_in_browser(admin)
        visit(admin, f"{base}/admin/", "#content")
        visit(admin, f"{base}/admin/accounts/user/", "#changelist")
        visit(admin, f"{base}/admin/accounts/user/{admin_user.pk}/change/", "#content")
        assert admin.errors == [], admin.errors


def test_an_injected_inline_script_does_not_run(live_server, clinician):
    """The policy's point: markup that slipped into a page cannot run script."""
    with chromium() as browser:
        page = watched_page(browser)
        log_in(page, live_server.url)
        page.evaluate("""() => {
            window.__ran = false;
            const script = document.createElement('script');
            script.textContent = 'window.__ran = true';
            document.body.appendChild(script);
            const img = document.createElement('img');
            img.setAttribute('onerror', 'window.__ran = true');
            img.src = '/nothing-here.png';
            document.body.appendChild(img);
        }""")
        page.wait_for_timeout(500)
        assert page.evaluate("window.__ran") is False
        assert any("script-src" in v for v in page.evaluate("window.__violations"))
