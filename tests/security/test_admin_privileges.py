"""The user admin for an administrator who is not a superuser (issue 21): they manage users,
but cannot grant superuser, staff, groups or permissions (to themselves or anyone; the fields are
read-only and a crafted POST changes nothing), nor change, delete or re-password a superuser.
A superuser keeps every right."""

import pytest
from django.urls import reverse

from tests.support.admin_forms import form_data

PRIVILEGES = ("is_superuser", "is_staff", "groups", "user_permissions")


@pytest.fixture
def superuser(db):
    from tests.support.factories import PASSWORD
    from webapp.accounts.models import User

    return User.objects.create_superuser("root", "root@example.org", PASSWORD)


@pytest.fixture
def grants(db):
    """A group and a permission worth stealing."""
    from django.contrib.auth.models import Group, Permission

    group = Group.objects.create(name="everything")
    permission = Permission.objects.get(codename="delete_auditevent")
    group.permissions.add(permission)
    return group, permission


def _change(user):
    return reverse("admin:accounts_user_change", args=[user.pk])


def _crafted_post(client, user, grants):
    """The change form as the page sent it, plus every privilege field, as a forged request."""
    group, permission = grants
    page = client.get(_change(user))
    assert page.status_code == 200
    data = form_data(page.content.decode())
    data.update(is_superuser=["on"], is_staff=["on"], groups=[str(group.pk)],
                user_permissions=[str(permission.pk)])
    return client.post(_change(user), data)


@pytest.mark.parametrize("whose", ["own", "another"])
def test_an_administrator_cannot_grant_privileges(whose, administrator, owner, login, grants):
    target = administrator if whose == "own" else owner
    client = login(administrator)
    page = client.get(_change(target)).content.decode()
    for field in PRIVILEGES:  # shown, not editable
        assert f'name="{field}"' not in page
    response = _crafted_post(client, target, grants)
    assert response.status_code == 302, response.content[:3000]  # saved: the rest of the form
    target.refresh_from_db()
    assert not target.is_superuser
    assert target.is_staff == (whose == "own")  # an administrator is staff by role, a clinician not
    assert not target.groups.exists() and not target.user_permissions.exists()
    assert not target.has_perm("audit.delete_auditevent")


def test_an_administrator_still_edits_ordinary_fields(administrator, owner, login):
    client = login(administrator)
    data = form_data(client.get(_change(owner)).content.decode())
    data["email"] = ["owner@ward7.example.org"]
    assert client.post(_change(owner), data).status_code == 302
    owner.refresh_from_db()
    assert owner.email == "owner@ward7.example.org"


def test_an_administrator_cannot_change_or_delete_a_superuser(administrator, superuser, login):
    client = login(administrator)
    before = superuser.password
    page = client.get(_change(superuser))
    assert page.status_code == 200 and b'name="email"' not in page.content  # view only
    data = {"username": "root", "email": "mine@example.org", "is_active": "", "role": "admin"}
    assert client.post(_change(superuser), data).status_code == 403
    password = reverse("admin:auth_user_password_change", args=[superuser.pk])
    assert client.get(password).status_code == 403
    assert client.post(password, {"password1": "Taken-over-9!", "password2": "Taken-over-9!",
                                  "usable_password": "true"}).status_code == 403
    delete = reverse("admin:accounts_user_delete", args=[superuser.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    bulk = client.post(reverse("admin:accounts_user_changelist"),
                       {"action": "delete_selected", "_selected_action": [superuser.pk], "post": "yes"})
    assert bulk.status_code in (200, 403)  # Django answers "you may not delete" on its page
    superuser.refresh_from_db()
    assert superuser.is_active and superuser.email == "root@example.org"
    assert superuser.password == before


def test_a_superuser_keeps_every_right(superuser, owner, login, grants):
    client = login(superuser)
    page = client.get(_change(owner)).content.decode()
    assert all(f'name="{field}"' in page for field in PRIVILEGES)
    assert _crafted_post(client, owner, grants).status_code == 302
    owner.refresh_from_db()
    assert owner.is_superuser and owner.groups.count() == 1


def test_tokens_are_not_readable_in_the_admin(administrator, owner, login):
    from tests.support.tokens import issue_key
    from webapp.accounts.models import ApiToken

    key = issue_key(owner, name="PACS bridge")
    token = ApiToken.objects.get(user=owner)
    client = login(administrator)
    listing = client.get(reverse("admin:accounts_apitoken_changelist")).content.decode()
    page = client.get(reverse("admin:accounts_apitoken_change", args=[token.pk])).content.decode()
    for html in (listing, page):
        assert token.token_key in html and "PACS bridge" in html  # which token: its prefix
        assert key not in html and token.digest not in html
    assert client.get(reverse("admin:accounts_apitoken_add")).status_code == 403
    from django.contrib import admin
    from knox.models import AuthToken

    assert not admin.site.is_registered(AuthToken)  # knox's own admin (it could create tokens)
