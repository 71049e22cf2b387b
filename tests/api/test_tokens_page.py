"""The "API tokens" page (issue 21): a user creates a token and sees its key once, lists their
own (prefix, name, created, expiry, last use) and revokes them; another user's tokens are neither
listed nor revocable (404). Creating and revoking are audited."""

from django.urls import reverse
from rest_framework.test import APIClient

from tests.support.tokens import issue_key

PAGE = reverse("accounts:tokens")


def _works(key) -> bool:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get("/api/v1/cases/").status_code == 200


def _revoke(token):
    return reverse("accounts:token_revoke", args=[token.pk])


def test_create_shows_the_key_once(owner, login):
    from webapp.accounts.models import ApiToken
    from webapp.audit.models import AuditEvent

    client = login(owner)
    response = client.post(PAGE, {"name": "PACS bridge", "days": "30"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    key = response.context["new_key"]
    assert key in response.content.decode() and _works(key)
    token = ApiToken.objects.get(user=owner)
    again = client.get(PAGE).content.decode()
    assert key not in again and token.token_key in again and "PACS bridge" in again
    event = AuditEvent.objects.get(action="token_created")
    assert event.user == owner and event.client_address == "10.1.2.3"
    assert event.object_id == str(token.pk) and key not in str(event.detail)


def test_bad_input_is_a_400_with_a_reason(owner, login, settings):
    settings.API_TOKEN_TTL_DAYS = 30
    client = login(owner)
    for days in ("31", "0", "soon", ""):
        response = client.post(PAGE, {"name": "x", "days": days})
        assert response.status_code == 400 and response.context["new_key"] is None, days
        assert response.context["form"].errors["days"]
    assert client.post(PAGE, {"name": "x" * 101, "days": "3"}).status_code == 400


def test_a_user_lists_and_revokes_only_their_own(owner, other, login):
    from webapp.accounts.models import ApiToken
    from webapp.audit.models import AuditEvent

    mine, theirs = issue_key(owner, name="mine"), issue_key(other, name="theirs")
    my_token, their_token = ApiToken.objects.get(user=owner), ApiToken.objects.get(user=other)
    client = login(owner)
    page = client.get(PAGE).content.decode()
    assert my_token.token_key in page and their_token.token_key not in page and "theirs" not in page
    assert client.post(_revoke(their_token)).status_code == 404
    assert client.post(reverse("accounts:token_revoke", args=[10**9])).status_code == 404
    assert _works(theirs)
    assert client.get(_revoke(my_token)).status_code == 405  # a revocation is a POST
    assert client.post(_revoke(my_token)).status_code == 302
    assert not _works(mine) and _works(theirs)
    after = client.get(PAGE).content.decode()
    assert _revoke(my_token) not in after and "revoked" in after  # gone, and said so
    event = AuditEvent.objects.get(action="token_revoked")
    assert event.user == owner and event.detail["prefix"] == my_token.token_key


def test_an_administrator_sees_only_their_own_tokens_on_the_page(administrator, owner, login):
    from webapp.accounts.models import ApiToken

    issue_key(owner)
    token = ApiToken.objects.get(user=owner)
    client = login(administrator)
    assert token.token_key not in client.get(PAGE).content.decode()
    assert client.post(_revoke(token)).status_code == 404  # the admin revokes in the admin


def test_an_administrator_revokes_in_the_admin_with_an_audit_row(administrator, owner, login):
    from webapp.accounts.models import ApiToken
    from webapp.audit.models import AuditEvent

    key = issue_key(owner)
    token = ApiToken.objects.get(user=owner)
    delete = reverse("admin:accounts_apitoken_delete", args=[token.pk])
    assert login(administrator).post(delete, {"post": "yes"}).status_code == 302
    assert not _works(key)
    event = AuditEvent.objects.get(action="token_revoked")
    assert event.user == administrator and event.detail["owner"] == "owner"


def test_the_page_needs_a_login(client):
    response = client.get(PAGE)
    assert response.status_code == 302 and "/login/" in response["Location"]
