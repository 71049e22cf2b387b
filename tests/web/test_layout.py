"""The site's layout on every page (issue 20): a skip link to the content, confirmations in a
status region, and error pages in the site's layout that still render with no database."""

import pytest
from django.template import loader
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.web.markup import parse
from webapp.middleware import server_error

pytestmark = pytest.mark.django_db


def test_every_page_starts_with_a_skip_link_to_the_main_content(client, login, owner):
    for page in (client.get(reverse("login")), login(owner).get(reverse("cases:list"))):
        html = parse(page.content.decode())
        first_link = next(html.find_all("a"))
        assert first_link.attrs["href"] == "#content" and "Skip to main content" in first_link.text
        main = next(html.find_all("main"))
        assert main.attrs["id"] == "content"


def assert_in_layout(html: str):
    tree = parse(html)
    assert next(tree.find_all("header", class_="top"), None) is not None, "the site's header"
    assert "Pneumothorax Triage" in next(tree.find_all("a", class_="brand")).text
    assert next(tree.find_all("footer")).text.startswith("Decision support only")


def test_the_404_page_is_in_the_site_layout(client, login, owner):
    anonymous = client.get("/accounts/login/")
    assert anonymous.status_code == 404
    assert_in_layout(anonymous.content.decode())
    assert "Not found" in anonymous.content.decode() and "Log out" not in anonymous.content.decode()
    signed_in = login(owner).get("/cases/no-such-page/")
    assert signed_in.status_code == 404
    assert_in_layout(signed_in.content.decode())
    assert "Log out owner" in signed_in.content.decode()  # the navigation, for a user


def test_the_csrf_page_is_in_the_site_layout():
    refused = Client(enforce_csrf_checks=True).post(reverse("login"), {"username": "x"})
    assert refused.status_code == 403
    assert_in_layout(refused.content.decode())
    assert "This form has expired" in refused.content.decode()


@pytest.mark.parametrize("name, words", [("500.html", "Something went wrong"),
                                         ("503.html", "briefly unavailable"),
                                         ("400.html", "Bad request"), ("403.html", "Not allowed")])
def test_error_pages_render_with_no_request_no_user_and_no_database(django_assert_num_queries, name, words):
    with django_assert_num_queries(0):
        html = loader.get_template(name).render({})
    assert_in_layout(html)
    assert words in html


def test_the_500_handler_renders_the_layout_without_the_database(django_assert_num_queries):
    request = RequestFactory().get("/cases/")
    with django_assert_num_queries(0):
        response = server_error(request)
    assert response.status_code == 500
    assert_in_layout(response.content.decode())
