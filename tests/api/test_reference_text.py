"""A case's reference is checked once (webapp.cases.services.text), by the upload page's form
and by the API's serializer alike (the API's with a session here: the same serializer as
with a token): control characters (ESC, BEL, line breaks, C1) and the
invisible bidirectional-text controls (U+202E and its kin) are refused with the same reason,
and nothing is stored; ordinary text, accents and right-to-left scripts are kept."""

import html

import pytest
from django.urls import reverse

from webapp.cases.models import Case

pytestmark = pytest.mark.django_db

REFUSED = ["\x1b[31m", "\x07", "line\nbreak", "tab\there", "\x7f", "\x85", "\u202e", "\u202a",
           "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"]


def page_post(client, xray_file, reference):
    return client.post(reverse("cases:upload"), {"images": [xray_file("png")],
                                                  "client_reference": reference})


def api_post(client, xray_file, reference):
    return client.post("/api/v1/cases/", {"images": [xray_file("png")],
                                          "client_reference": reference})


@pytest.mark.parametrize("bad", REFUSED)
def test_page_and_api_refuse_the_same_characters_with_the_same_reason(
        login, owner, xray_file, bad):
    reference = f"ward-7/{bad}42"
    page = page_post(login(owner), xray_file, reference)
    api = api_post(login(owner), xray_file, reference)
    assert page.status_code == 400 and api.status_code == 400, (page.status_code, api.content)
    [reason] = [line.split(": ", 1)[1] for line in api.json()["errors"]
                if line.startswith("client_reference: ")]
    offending = next(ch for ch in bad if not ch.isprintable())
    assert f"U+{ord(offending):04X}" in reason  # the reason names the character
    assert html.escape(reason) in page.content.decode()  # the page says the same thing
    assert not Case.objects.exists()


@pytest.mark.parametrize("good", ["ward-7/42", "Müller, Zoë", "מחלקה 7", "مريض ٤٢", "  padded  "])
def test_ordinary_references_are_kept_alike_by_page_and_api(
        login, owner, xray_file, good):
    assert page_post(login(owner), xray_file, good).status_code == 302
    page_case = Case.objects.get()
    assert page_case.client_reference == good.strip()
    page_case.delete()
    response = api_post(login(owner), xray_file, good)
    assert response.status_code == 201, response.content
    assert Case.objects.get().client_reference == good.strip()


def test_batch_label_takes_the_same_check(login, owner):
    response = login(owner).post("/api/v1/batches/", {"label": "night \u202eshift"},
                                 content_type="application/json")
    assert response.status_code == 400
    assert "U+202E" in " ".join(response.json()["errors"])
