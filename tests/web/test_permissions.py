"""A user never sees another user's case, image, mask, overlay, status or audit rows: the owner
and an admin get them, another clinician gets 404 (not 403: existence is not confirmed)."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

KINDS = ["original", "preview", "mask", "overlay"]


def case_urls(case):
    image = case.images.get()
    urls = {
        "case page": reverse("cases:detail", args=[case.pk]),
        "status json": reverse("cases:status", args=[case.pk]),
    }
    for kind in KINDS:
        urls[kind] = reverse("cases:image_file", args=[case.pk, image.pk, kind])
    return urls


@pytest.mark.parametrize("who, expected", [("owner", 200), ("other", 404), ("administrator", 200)])
def test_case_page_status_and_files_by_user(request, login, done_case, who, expected):
    client = login(request.getfixturevalue(who))
    for label, url in case_urls(done_case).items():
        response = client.get(url)
        assert response.status_code == expected, (label, who, response.status_code)
        if expected == 200 and label in KINDS:
            content = b"".join(response.streaming_content)
            assert len(content) > 1000, label
            if label != "original":
                assert content.startswith(b"\x89PNG"), label


def test_stranger_cannot_delete(login, other, done_case):
    from webapp.cases.models import Case

    response = login(other).post(reverse("cases:delete", args=[done_case.pk]))
    assert response.status_code == 404
    assert Case.objects.filter(pk=done_case.pk).exists()


def test_image_of_one_case_not_reachable_through_another(login, owner, other, make_case, done_case):
    """An image id is only valid under its own case id, even for someone who owns a case."""
    others_case = make_case(other)
    image = done_case.images.get()
    url = reverse("cases:image_file", args=[others_case.pk, image.pk, "overlay"])
    assert login(other).get(url).status_code == 404


def test_history_lists_only_own_cases_admin_all(login, owner, other, administrator, make_case):
    mine, theirs = make_case(owner), make_case(other)
    page = login(owner).get(reverse("cases:list")).content.decode()
    assert str(mine.pk) in page and str(theirs.pk) not in page
    page = login(administrator).get(reverse("cases:list")).content.decode()
    assert str(mine.pk) in page and str(theirs.pk) in page


@pytest.mark.parametrize("who, sees_owner_rows", [("owner", True), ("other", False), ("administrator", True)])
def test_audit_rows_visible_to_owner_and_admin_only(request, login, done_case, owner, who, sees_owner_rows):
    from webapp.audit.models import AuditEvent

    owner_rows = AuditEvent.objects.filter(user=owner)
    assert owner_rows.filter(object_id=str(done_case.pk)).exists()
    viewer = request.getfixturevalue(who)
    page = login(viewer).get(reverse("audit")).content.decode()
    assert (str(done_case.pk) in page) is sees_owner_rows
    if who == "other":
        assert "owner" not in page.split("<tbody>")[1]  # no row of the owner at all


def test_anonymous_is_sent_to_login_everywhere(client, done_case):
    for url in [reverse("cases:list"), reverse("cases:upload"), reverse("audit"),
                *case_urls(done_case).values()]:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), url
