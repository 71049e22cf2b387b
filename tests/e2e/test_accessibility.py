"""axe-core (the accessibility engine of Deque's browser tools, from npm) in a real browser on
every page a clinician uses: zero violations, at a desktop's size and at a phone's."""

import pytest
from django.urls import reverse

from tests.support.browser import DESKTOP, MASKS_DRAWN, PHONE, axe_violations, chromium, log_in

pytestmark = [pytest.mark.e2e, pytest.mark.browser, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]


def page_paths(case):
    return [reverse("cases:list"), reverse("cases:detail", args=[case.pk]),
            reverse("cases:upload"), reverse("cases:report", args=[case.pk]),
            reverse("cases:model_versions"), reverse("audit")]


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_no_axe_violations_on_any_page(live_server, multi_image_case, viewport):
    paths = page_paths(multi_image_case)
    found = {}
    with chromium() as browser:
        page = browser.new_page(viewport=viewport)
        page.goto(f"{live_server.url}{reverse('login')}")
        found["login"] = axe_violations(page)
        log_in(page, live_server.url)
        for path in paths:
            page.goto(live_server.url + path)
            page.wait_for_load_state("networkidle")
            if path == paths[1]:  # the case page, once its viewers drew the films and outlines
                page.wait_for_function(MASKS_DRAWN, arg=3)
            found[path] = axe_violations(page)
    problems = [f"{path}: {line}" for path, lines in found.items() for line in lines]
    assert not problems, "\n".join(problems)
