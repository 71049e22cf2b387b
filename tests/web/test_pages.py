import pytest
from django.urls import reverse

from webapp.cases.services.pipeline import analyse_job

pytestmark = pytest.mark.django_db


def test_history_is_newest_first_with_status_and_result(login, owner, make_case, stub_predictor):
    older, newer = make_case(owner), make_case(owner, "png")
    analyse_job(older.images.get().job.pk, stub_predictor)
    page = login(owner).get(reverse("cases:list")).content.decode()
    assert page.index(str(newer.pk)) < page.index(str(older.pk))
    assert "status-queued" in page and "status-done" in page and "Pneumothorax suspected" in page


def test_case_page_polls_status_and_uses_no_external_assets(login, owner, make_case):
    case = make_case(owner)
    page = login(owner).get(reverse("cases:detail", args=[case.pk])).content.decode()
    assert reverse("cases:status", args=[case.pk]) in page and "js/case.js" in page
    assert "http://" not in page and "https://" not in page  # nothing from a CDN


def test_unknown_case_is_404_not_500(login, owner):
    response = login(owner).get("/cases/00000000-0000-0000-0000-000000000000/")
    assert response.status_code == 404
    assert login(owner).get("/cases/not-a-uuid/").status_code == 404


def test_status_json_shape(login, owner, done_case):
    payload = login(owner).get(reverse("cases:status", args=[done_case.pk])).json()
    image = payload["images"][0]
    assert payload["status"] == "done" and payload["positive"] is True
    assert image["overlay_url"].endswith("/overlay.png") and image["mask_url"].endswith("/mask.png")
    assert image["probability"] == 0.9 and image["area_fraction"] > 0


def test_login_page_renders_for_anonymous(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200 and b'name="password"' in response.content


def test_superuser_is_admin_role(db):
    from webapp.accounts.models import Role, User

    user = User.objects.create_superuser("root", "r@example.org", "pw-long-enough-1")
    assert user.role == Role.ADMIN and user.is_staff and user.is_admin_role
