"""Failed-login throttling: after N failures for one name from one address, that name is
locked from that address (even with the right password), with a clear message and an audit
row; other addresses are not locked; the admin's log-in goes through the same check."""

import pytest
from django.test import Client
from django.urls import reverse

from webapp.audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def attempt(address, username, password):
    return Client(REMOTE_ADDR=address).post(reverse("login"), {"username": username,
                                                               "password": password})


def test_name_is_locked_from_one_address_after_repeated_failures(owner, settings):
    settings.LOGIN_THROTTLE_FAILURES = 3
    for _ in range(3):
        assert attempt("10.9.9.9", "owner", "wrong").status_code == 200
    locked = attempt("10.9.9.9", "owner", PASSWORD)  # the right password, refused while locked
    assert locked.status_code == 200 and "_auth_user_id" not in locked.client.session
    assert "Too many failed log-in attempts" in locked.content.decode()
    row = AuditEvent.objects.filter(action=Action.LOGIN_LOCKED).get()
    assert row.detail == {"username": "owner"} and row.client_address == "10.9.9.9"

    ok = attempt("10.8.8.8", "owner", PASSWORD)  # another address is not locked
    assert ok.status_code == 302


def test_lockout_ends_when_failures_leave_the_window(owner, settings):
    settings.LOGIN_THROTTLE_FAILURES = 2
    for _ in range(2):
        attempt("10.7.7.7", "owner", "wrong")
    assert attempt("10.7.7.7", "owner", PASSWORD).status_code == 200
    settings.LOGIN_THROTTLE_WINDOW_S = 0  # as if the window had passed
    assert attempt("10.7.7.7", "owner", PASSWORD).status_code == 302


def test_address_spraying_many_names_is_locked(owner, settings):
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 4
    for name in ("a", "b", "c", "d"):
        attempt("10.6.6.6", name, "wrong")
    assert attempt("10.6.6.6", "owner", PASSWORD).status_code == 200


def test_admin_login_is_throttled_too(administrator, settings):
    settings.LOGIN_THROTTLE_FAILURES = 2
    url = reverse("admin:login")
    client = Client(REMOTE_ADDR="10.5.5.5")
    for _ in range(2):
        client.post(url, {"username": "administrator", "password": "wrong"})
    response = client.post(url, {"username": "administrator", "password": PASSWORD})
    assert response.status_code == 200 and "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action=Action.LOGIN_LOCKED).exists()
