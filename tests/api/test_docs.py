"""The API's documentation pages (Swagger UI, Redoc) are pages of this site like the others: they
load nothing from another host (hospital networks reach nothing else), and an anonymous
browser is sent to the login page. The API itself keeps answering programs with JSON 401/403."""

import re
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from tests.web.markup import parse, urls

pytestmark = pytest.mark.django_db

DOC_PAGES = ("/api/docs/", "/api/redoc/")


def off_site(url: str) -> bool:
    parts = urlsplit(url.strip())
    return (bool(parts.netloc) and parts.netloc != "testserver") or parts.scheme not in ("", "http", "https")


@pytest.mark.parametrize("url", DOC_PAGES)
def test_docs_pages_load_nothing_from_another_host(client, owner, url):
    client.force_login(owner)
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    named = list(urls(parse(html)))
    assert named, "the page names its scripts and styles"
    assert [u for u in named if off_site(u[2])] == []
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html)  # any spelling
    assert "fonts.googleapis" not in html and "fonts.gstatic" not in html and "redoc.ly" not in html
    # Everything the page loads is a file of this site that is really there.
    for tag, attribute, target in named:
        if tag in ("script", "link"):
            assert client.get(target).status_code == 200, target
    # And the browser is told to fetch nothing from elsewhere (the Redoc bundle itself would
    # show a logo from cdn.redoc.ly in its menu).
    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "img-src 'self'" in policy
    assert "http" not in policy and "*" not in policy


def test_redoc_page_uses_the_local_redoc_bundle(client, owner):
    client.force_login(owner)
    html = client.get("/api/redoc/").content.decode()
    scripts = [element.attrs["src"] for element in parse(html).find_all("script") if "src" in element.attrs]
    # The bundle, then the start-up script (a file: the page's policy runs no inline script).
    assert scripts == ["/static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js",
                       "/static/js/redoc-init.js"]


@pytest.mark.parametrize("url", DOC_PAGES)
def test_anonymous_browser_is_sent_to_the_login_page(client, url):
    response = client.get(url, HTTP_ACCEPT="text/html,application/xhtml+xml,*/*;q=0.8")
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"
    assert client.get(response["Location"]).status_code == 200


def test_api_endpoints_keep_answering_programs_with_json_401_and_403(client, owner):
    for url in ("/api/v1/cases/", "/api/v1/batches/", "/api/schema/?format=json"):
        response = client.get(url)
        assert response.status_code == 401, url
        assert response.json()["detail"], url
        assert "Location" not in response
    session = Client(enforce_csrf_checks=True)
    session.force_login(owner)
    refused = session.post("/api/v1/cases/", {})  # a session without a CSRF token
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
