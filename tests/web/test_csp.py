"""Content-Security-Policy (issue 21): every page answers with a strict policy, and no page
needs what it forbids (no inline script, no inline event handler, no style attribute).

What the browser makes of it (no violation in the console) is tests/e2e/test_csp_browser.py."""

import pytest
from django.test import Client
from django.urls import reverse

from tests.web.markup import parse

pytestmark = pytest.mark.django_db

REQUIRED = {"default-src": "'self'", "object-src": "'none'", "base-uri": "'self'",
            "form-action": "'self'", "frame-ancestors": "'none'"}


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    parsed = {}
    for directive in filter(None, (part.strip() for part in policy.split(";"))):
        name, *values = directive.split()
        parsed[name] = values
    return parsed


def assert_strict(response):
    policy = directives(response)
    for name, value in REQUIRED.items():
        assert policy.get(name) == [value], (name, policy)
    # Nothing else may widen what scripts (or anything falling back to default-src) may do.
    assert set(policy) == set(REQUIRED), policy
    assert "unsafe" not in response["Content-Security-Policy"]


def inline_code(html: str) -> list[str]:
    """What a strict policy would block: inline <script> bodies, on* handlers, style attributes,
    <style> elements, javascript: URLs."""
    found = []
    for element in parse(html).iter():
        if element.tag == "script" and (element.text.strip() or not element.attrs.get("src")):
            found.append(f"<script> without src: {element.text.strip()[:60]!r}")
        if element.tag == "style":
            found.append("<style> element")
        for name, value in element.attrs.items():
            if name.startswith("on") or name == "style":
                found.append(f"<{element.tag} {name}={value!r}>")
            if (value or "").strip().lower().startswith("javascript:"):
                found.append(f"<{element.tag} {name}={value!r}>")
    return found


@pytest.fixture
def pages(done_case):
    image = done_case.images.get()
    return ["/cases/", "/cases/new/", f"/cases/{done_case.pk}/", f"/cases/{done_case.pk}/report/",
            reverse("cases:model_versions"), reverse("audit"), "/cases/?reviewed=no&status=done",
            reverse("accounts:tokens"),
            reverse("cases:image_file", args=[done_case.pk, image.pk, "overlay"])]


def test_every_page_of_a_clinician_has_the_strict_policy_and_no_inline_code(login, owner, pages):
    client = login(owner)
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
        if response["Content-Type"].startswith("text/html"):
            assert inline_code(response.content.decode()) == [], url


def test_login_and_error_pages_have_it_too(client):
    login_page = client.get(reverse("login"))
    assert_strict(login_page)
    assert inline_code(login_page.content.decode()) == []
    not_found = client.get("/accounts/login/")
    assert not_found.status_code == 404
    assert_strict(not_found)
    assert inline_code(not_found.content.decode()) == []
    refused = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "x"})
    assert refused.status_code == 403
    assert_strict(refused)
    assert inline_code(refused.content.decode()) == []


def test_admin_pages_have_it(login, make_user):
    admin = make_user("root-admin", role="admin")
    admin.is_staff = admin.is_superuser = True
    admin.save()
    client = login(admin)
    for url in ("/admin/", "/admin/accounts/user/", f"/admin/accounts/user/{admin.pk}/change/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert_strict(response)
        scripts = [e for e in parse(response.content.decode()).find_all("script") if not e.attrs.get("src")]
        assert scripts == [], url  # Django's admin keeps its scripts in files too


def test_json_answers_carry_the_policy_harmlessly(login, owner, done_case):
    response = login(owner).get(reverse("cases:status", args=[done_case.pk]))
    assert response.status_code == 200
    assert_strict(response)


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_api_docs_have_their_own_policy_without_inline_scripts(client, owner, url):
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200
    policy = directives(response)
    assert policy["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["default-src"] == ["'self'"] and policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    html = parse(response.content.decode())
    assert [e for e in html.find_all("script") if not e.attrs.get("src") or e.text.strip()] == []


def test_swagger_ui_start_up_script_is_served_from_the_same_address(client, owner):
    client.force_login(owner)
    page = parse(client.get("/api/docs/").content.decode())
    start = [e.attrs["src"] for e in page.find_all("script") if "script=" in e.attrs["src"]]
    assert len(start) == 1
    script = client.get(start[0])
    assert script.status_code == 200 and script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle" in script.content.decode() and "/api/schema/" in script.content.decode()
