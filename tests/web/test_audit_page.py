"""The audit log for an auditor: one row per view of a case (the images its page then loads
write none), rows linked to what they name when the reader may open it, and filters by user,
action and days that keep the pages."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from tests.support.factories import CaseFactory, UploadFactory
from tests.web.markup import parse
from webapp.audit import services as audit
from webapp.audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def rows(user, action=None):
    events = AuditEvent.objects.filter(user=user)
    return events.filter(action=action) if action else events


def page_fetches(client, case):
    """What a browser fetches for the case page: each image's preview (twice: viewer and
    picture), and once done its mask (the viewer's layer) and overlay (the picture)."""
    for image in case.images.all():
        for kind in ("preview", "preview", "mask", "overlay"):
            response = client.get(reverse("cases:image_file", args=[case.pk, image.pk, kind]))
            assert response.status_code == 200, kind


def test_one_row_per_case_view_naming_its_images(login, owner, stub_predictor):
    case = CaseFactory(owner=owner, predictor=stub_predictor,
                       uploads=[UploadFactory(extension="png"), UploadFactory(extension="png", index=1)])
    client = login(owner)
    before = rows(owner).count()
    assert client.get(reverse("cases:detail", args=[case.pk])).status_code == 200
    page_fetches(client, case)
    assert client.get(reverse("cases:status", args=[case.pk])).status_code == 200
    new = rows(owner).order_by("id")[before:]
    assert [e.action for e in new] == [Action.VIEW_CASE]  # was 1 + 4 per image
    images = [str(pk) for pk in case.images.order_by("position").values_list("pk", flat=True)]
    assert new[0].detail == {"images": [{"id": i, "result": True} for i in images]}
    assert new[0].object_id == str(case.pk) and new[0].client_address == "10.1.2.3"

    # Each view is an access: a reload and the printable report write one row each.
    client.get(reverse("cases:detail", args=[case.pk]))
    client.get(reverse("cases:report", args=[case.pk]))
    page_fetches(client, case)
    views = list(rows(owner, Action.VIEW_CASE).order_by("id").values_list("detail", flat=True))
    assert len(views) == 3 and views[2]["page"] == "report" and rows(owner).count() == before + 3


def test_fetches_no_page_view_accounts_for_keep_their_rows(login, owner, other, stub_predictor):
    case = CaseFactory(owner=owner, predictor=stub_predictor)
    image = case.images.get()
    viewed = login(owner)
    viewed.get(reverse("cases:detail", args=[case.pk]))
    # Another session of the same user, without the page: a row per fetch.
    elsewhere = login(owner)
    elsewhere.get(reverse("cases:image_file", args=[case.pk, image.pk, "overlay"]))
    # The original and downloads are accesses of their own even after the page.
    viewed.get(reverse("cases:image_file", args=[case.pk, image.pk, "original"]))
    viewed.get(reverse("cases:image_file", args=[case.pk, image.pk, "mask"]) + "?download=1")
    kinds = [(e.action, e.detail["kind"]) for e in rows(owner).filter(action__in=[Action.VIEW_IMAGE, Action.DOWNLOAD]).order_by("id")]
    assert kinds == [(Action.VIEW_IMAGE, "overlay"), (Action.DOWNLOAD, "original"), (Action.DOWNLOAD, "mask")]
    # An hour after the page, its images' fetches are accesses again.
    session = viewed.session
    session[audit._SESSION_KEY][str(case.pk)] -= audit.PAGE_VIEW_COVERS_S + 1
    session.save()
    viewed.get(reverse("cases:image_file", args=[case.pk, image.pk, "preview"]))
    assert rows(owner, Action.VIEW_IMAGE).count() == 2
    # Another case's page covers nothing of this one (and a stranger gets 404, no row).
    assert login(other).get(reverse("cases:image_file", args=[case.pk, image.pk, "preview"])).status_code == 404
    assert not rows(other).exclude(action=Action.LOGIN).exists()


def audit_page(client, **params):
    response = client.get(reverse("audit"), params)
    assert response.status_code == 200
    return parse(response.content)


def table_rows(page):
    return [[cell.text for cell in row.find_all("td")] for row in page.find_all("tr", class_="audit-row")]


def object_cells(page):
    return list(page.find_all("td", class_="audit-object"))


def links(page):
    return {a.attrs["href"] for cell in object_cells(page) for a in cell.find_all("a")}


def test_rows_link_to_the_case_and_image_the_reader_may_open(login, owner, other, administrator,
                                                             stub_predictor):
    case = CaseFactory(owner=owner, predictor=stub_predictor)
    image = case.images.get()
    gone = CaseFactory(owner=owner)
    owner_client = login(owner)
    owner_client.get(reverse("cases:image_file", args=[case.pk, image.pk, "original"]))
    owner_client.get(reverse("cases:detail", args=[case.pk]))
    owner_client.post(reverse("cases:delete", args=[gone.pk]))

    page = audit_page(owner_client)
    assert links(page) == {f"/cases/{case.pk}/", f"/cases/{case.pk}/#image-{image.pk}"}
    deleted = [c for c in object_cells(page) if str(gone.pk) in c.text]
    assert deleted and all(not list(c.find_all("a")) for c in deleted)  # by id, no link
    assert f"image {image.pk}" in page.text  # named as an image, not "caseimage"
    for href in links(page):
        assert owner_client.get(href).status_code == 200

    # The administrator, filtering the owner's rows, gets the same links.
    assert links(audit_page(login(administrator), user="owner")) == links(page)
    # A row about a case the reader may not open (now) is shown without a link.
    audit.record(other, Action.VIEW_CASE, case, "10.0.0.1")
    page = audit_page(login(other))
    assert [c.text for c in object_cells(page) if c.text] == [f"case {case.pk}"] and not links(page)


def test_filters_by_user_action_and_days(login, owner, other, administrator):
    for user, action in ((owner, Action.LOGIN), (owner, Action.UPLOAD), (other, Action.LOGIN)):
        audit.record(user, action, None, "10.0.0.1")
    audit.record(None, Action.LOGIN_FAILED, None, "10.0.0.2", detail={"username": "Owner"})
    AuditEvent(user=owner, username="owner", action=Action.DOWNLOAD,
               at=timezone.now() - timedelta(days=40)).save()
    client = login(administrator)

    def listed(**params):
        return [(cells[1], cells[2]) for cells in table_rows(audit_page(client, **params))]

    everything = listed()
    assert len(everything) == AuditEvent.objects.count() == 6  # with the administrator's log-in
    # A user's trail, failed log-ins under their name included (any case).
    assert listed(user="owner") == [("–", "Failed login"), ("owner", "Upload"), ("owner", "Login"),
                                    ("owner", "Download")]
    assert listed(user="OWNER ", action="login") == [("owner", "Login")]
    assert listed(action="login") == [("administrator", "Login"), ("other", "Login"), ("owner", "Login")]
    today = timezone.localdate()
    assert listed(user="owner", after=(today - timedelta(days=7)).isoformat())[-1] == ("owner", "Login")
    assert listed(before=(today - timedelta(days=30)).isoformat()) == [("owner", "Download")]
    assert listed(before=(today - timedelta(days=40)).isoformat()) == [("owner", "Download")]  # inclusive
    assert listed(before=(today - timedelta(days=41)).isoformat()) == []
    assert listed(after="0001-01-01", before="9999-12-31") == everything  # the calendar's ends
    assert listed(user="nobody") == []

    # A bad value: said so, and nothing is filtered by the form.
    page = audit_page(client, after="not-a-date", action="login")
    assert list(page.find_all("p", class_="error")) and len(table_rows(page)) == 6
    page = audit_page(client, action="no-such-action")
    assert list(page.find_all("p", class_="error")) and len(table_rows(page)) == 6
    page = audit_page(client, after=today.isoformat(), before=(today - timedelta(days=1)).isoformat())
    assert "'From' is after 'Until'" in next(page.find_all("p", class_="error")).text
    assert client.get(reverse("audit"), {"after": "99999-01-01", "page": "x"}).status_code == 200


def test_a_clinician_filters_only_their_own_trail(login, owner, other):
    audit.record(other, Action.UPLOAD, None, "10.0.0.1")
    audit.record(owner, Action.UPLOAD, None, "10.0.0.1")
    page = audit_page(login(owner), user="other")
    assert not list(page.find_all("input", name="user"))  # nobody else's trail to choose
    assert {cells[1] for cells in table_rows(page)} == {"owner"}


def test_filtered_pages_keep_their_filters(login, administrator, owner):
    for _ in range(120):
        audit.record(owner, Action.VIEW_CASE, None, "10.0.0.1")
    audit.record(owner, Action.LOGIN, None, "10.0.0.1")
    client = login(administrator)
    page = audit_page(client, user="owner", action="view_case")
    assert "Page 1 of 3" in page.text and "120 events" in page.text
    pager = next(page.find_all("nav", class_="pagination"))
    assert [a.attrs["href"] for a in pager.find_all("a")] == ["?user=owner&action=view_case&page=2"]
    page = audit_page(client, user="owner", action="view_case", page=3)
    assert len(table_rows(page)) == 20 and {cells[2] for cells in table_rows(page)} == {"Case viewed"}
    assert Client().get(reverse("audit")).status_code == 302  # anonymous: the login page
