"""API tokens (issue 21): hashed at rest (the database never holds a key), expiring (401 after),
revoked when the owner's password changes (whichever way), audited, and DRF's old clear tokens
carried over hashed. The header stays ``Authorization: Token <key>``."""

import importlib
import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.support.factories import PASSWORD
from tests.support.tokens import issue_key

CASES = "/api/v1/cases/"


def _get(key, url=CASES):
    client = APIClient(REMOTE_ADDR="10.4.5.6")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.get(url)


def _everything_stored():
    """Every token row and audit row, as text: what a database dump would show."""
    from django.core import serializers

    from webapp.accounts.models import ApiToken
    from webapp.audit.models import AuditEvent

    return serializers.serialize("json", [*ApiToken.objects.all(), *AuditEvent.objects.all()])


def test_a_token_works_and_only_its_digest_is_stored(owner):
    from webapp.accounts.models import ApiToken

    key = issue_key(owner, name="PACS bridge")
    assert key.startswith("pt_") and len(key) == 3 + 64
    assert _get(key).status_code == 200
    token = ApiToken.objects.get(user=owner)
    assert token.digest != key and len(token.digest) == 128 and key.startswith(token.token_key)
    assert key not in _everything_stored()
    assert token.last_used is not None  # noted for the owner's list


def test_a_wrong_or_malformed_token_is_refused_with_401(owner):
    key = issue_key(owner)
    for wrong in (key[:-1] + ("0" if key[-1] != "0" else "1"), key[:15], "pt_", "é" * 20):
        response = _get(wrong)
        assert response.status_code == 401, wrong
        assert response["WWW-Authenticate"].startswith("Token")


def test_an_expired_token_gets_401(owner):
    from webapp.accounts.models import ApiToken

    key = issue_key(owner, days=1)
    assert _get(key).status_code == 200
    ApiToken.objects.filter(user=owner).update(expiry=timezone.now() - timedelta(seconds=1))
    assert _get(key).status_code == 401
    assert not ApiToken.objects.filter(user=owner, expiry__gt=timezone.now()).exists()


def test_lifetime_is_bounded_by_the_setting(owner, settings):
    from webapp.accounts import services

    settings.API_TOKEN_TTL_DAYS = 30
    token, _ = services.issue_token(owner)
    assert timedelta(days=29, hours=23) < token.expiry - timezone.now() <= timedelta(days=30)
    for days in (0, 31, -5):
        with pytest.raises(services.TokenLifetimeError):
            services.issue_token(owner, days=days)


def test_set_password_revokes_every_token_and_is_audited(owner, other):
    from webapp.audit.models import AuditEvent

    keys = [issue_key(owner), issue_key(owner, name="second")]
    others = issue_key(other)
    owner.set_password("a-new-password-77")
    owner.save()
    assert [_get(key).status_code for key in keys] == [401, 401]
    assert _get(others).status_code == 200  # another user's token is untouched
    revoked = AuditEvent.objects.filter(action="token_revoked", user=owner)
    assert revoked.count() == 2 and {e.detail["reason"] for e in revoked} == {"password_changed"}


def test_saving_a_user_without_a_new_password_keeps_tokens(owner, client):
    from webapp.accounts.models import User

    key = issue_key(owner)
    user = User.objects.get(pk=owner.pk)
    user.email = "owner@example.org"
    user.save()
    User.objects.only("username").get(pk=owner.pk).save(update_fields=["last_login"])
    assert client.login(username="owner", password=PASSWORD)  # update_last_login saves too
    assert _get(key).status_code == 200


def test_a_password_changed_in_the_admin_revokes_tokens(owner, login):
    from webapp.accounts.models import User

    key = issue_key(owner)
    root = User.objects.create_superuser("root", "root@example.org", PASSWORD)
    url = reverse("admin:auth_user_password_change", args=[owner.pk])
    response = login(root).post(url, {"password1": "Brand-new-pass-42", "password2": "Brand-new-pass-42",
                                      "usable_password": "true"})
    assert response.status_code == 302, response.content[:2000]
    assert _get(key).status_code == 401


def test_changepassword_command_revokes_tokens(owner, monkeypatch):
    key = issue_key(owner)
    monkeypatch.setattr("getpass.getpass", lambda prompt="": "Another-new-pass-43")
    call_command("changepassword", "owner")
    assert _get(key).status_code == 401


def test_a_deactivated_user_token_gets_401(owner):
    key = issue_key(owner)
    owner.is_active = False
    owner.save()
    assert _get(key).status_code == 401


def test_the_command_prints_a_working_token_once(owner, capsys):
    from webapp.audit.models import AuditEvent

    old = issue_key(owner)
    call_command("create_api_token", "owner", "--name", "night batch", "--days", "7", "--revoke-all")
    key = capsys.readouterr().out.strip()
    assert _get(key).status_code == 200 and _get(old).status_code == 401
    created = AuditEvent.objects.filter(action="token_created").latest("id")
    assert created.detail["name"] == "night batch" and key not in json.dumps(created.detail)
    for bad in (["nobody"], ["owner", "--days", "0"], ["owner", "--days", "100000"]):
        with pytest.raises(CommandError):
            call_command("create_api_token", *bad)


def test_drf_clear_tokens_are_carried_over_hashed(owner):
    """The data migration, on a database that still has DRF's authtoken_token table."""
    from django.apps import apps
    from django.db import connection

    from webapp.accounts.models import ApiToken

    migration = importlib.import_module("webapp.accounts.migrations.0004_carry_over_drf_tokens")
    old_key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (key varchar(40) PRIMARY KEY, "
                       "created timestamp with time zone NOT NULL, user_id bigint NOT NULL)")
        cursor.execute("INSERT INTO authtoken_token VALUES (%s, now() - interval '3 days', %s)",
                       [old_key, owner.pk])
    with connection.schema_editor() as editor:
        migration.carry_over(apps, editor)
    assert "authtoken_token" not in connection.introspection.table_names()
    token = ApiToken.objects.get(user=owner)
    assert token.expiry > timezone.now() + timedelta(days=1)
    assert timezone.now() - token.created > timedelta(days=2)  # its age is kept
    assert old_key not in _everything_stored()
    assert _get(old_key).status_code == 200  # the integration using it keeps working
