"""Failed-login throttling (django-axes, and webapp.accounts.login_limits on its records):
after N failures for one name from one address, that name is locked from that address (even
with the right password), with a clear message and an audit row; other addresses are not
locked; an address with many failures over many names is slowed down, never locked out; the
admin's log-in goes through the same checks; ``manage.py axes_reset`` unlocks."""

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.db.models import F, Sum
from django.test import Client
from django.urls import reverse

from webapp.audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery-9"


def attempt(address, username, password):
    return Client(REMOTE_ADDR=address).post(reverse("login"), {"username": username,
                                                               "password": password})


def is_locked_out(response):
    return (response.status_code == 200 and "_auth_user_id" not in response.client.session
            and "Too many failed log-in attempts. For your protection" in response.content.decode())


def test_name_is_locked_from_one_address_after_repeated_failures(owner, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        failed = attempt("10.9.9.9", "owner", "wrong")
        assert failed.status_code == 200
    # The failure that reaches the limit already says so (the password was not the reason).
    assert "Too many failed log-in attempts" in failed.content.decode()
    locked = attempt("10.9.9.9", "owner", PASSWORD)  # the right password, refused while locked
    assert locked.status_code == 200 and "_auth_user_id" not in locked.client.session
    assert "Too many failed log-in attempts" in locked.content.decode()
    row = AuditEvent.objects.filter(action=Action.LOGIN_LOCKED).get()
    assert row.detail == {"username": "owner"} and row.client_address == "10.9.9.9"

    ok = attempt("10.8.8.8", "owner", PASSWORD)  # another address is not locked
    assert ok.status_code == 302


def age_failures(by):
    """As if the failures had happened ``by`` earlier (axes' counter rows, not the audit log)."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - by)


def test_lockout_ends_when_failures_leave_the_window(owner, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        attempt("10.7.7.7", "owner", "wrong")
    assert is_locked_out(attempt("10.7.7.7", "owner", PASSWORD))
    age_failures(settings.AXES_COOLOFF_TIME - timedelta(seconds=10))  # 10 s of the window left
    assert is_locked_out(attempt("10.7.7.7", "owner", PASSWORD))  # (refusals did not extend it)
    age_failures(timedelta(seconds=11))  # the window has passed
    assert attempt("10.7.7.7", "owner", PASSWORD).status_code == 302


@pytest.fixture
def after_latest_failure(monkeypatch):
    """Set the clock to ``seconds`` after the latest failed log-in, so that waits are exact
    whatever the machine's speed (the audit log is append-only: its rows cannot be aged)."""
    from django.utils import timezone

    def at(seconds):
        latest = AccessAttempt.objects.latest("attempt_time").attempt_time
        monkeypatch.setattr(timezone, "now", lambda: latest + timedelta(seconds=seconds))
    return at


def test_address_spraying_many_names_is_slowed_down_not_locked_out(owner, settings,
                                                                    after_latest_failure):
    """Behind an untrusted proxy every user shares one address: spraying from it must not lock
    out a user with the right password. Over the address limit each attempt waits a while
    after the latest failure, then is checked as usual."""
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 4
    for name in ("a", "b", "c", "d"):
        assert attempt("10.6.6.6", name, "wrong").status_code == 200
    after_latest_failure(0)
    too_soon = attempt("10.6.6.6", "owner", PASSWORD)  # 1 s to wait after the 4th failure
    assert too_soon.status_code == 200 and "_auth_user_id" not in too_soon.client.session
    assert "Wait 1 second," in too_soon.content.decode()
    row = AuditEvent.objects.filter(action=Action.LOGIN_LOCKED).get()
    assert row.detail == {"username": "owner", "wait_s": 1} and row.client_address == "10.6.6.6"
    assert AuditEvent.objects.filter(action=Action.LOGIN_FAILED).count() == 4  # not a failure
    assert AccessAttempt.objects.aggregate(n=Sum("failures_since_start"))["n"] == 4  # nor here

    after_latest_failure(1)
    assert attempt("10.6.6.6", "owner", PASSWORD).status_code == 302  # the right password: in


@pytest.mark.parametrize("failures, wait", [(4, 1), (5, 2), (6, 4), (7, 8), (9, 10)])
def test_address_wait_doubles_per_failure_up_to_its_cap(owner, settings, after_latest_failure,
                                                         failures, wait):
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 4
    settings.LOGIN_THROTTLE_ADDRESS_MAX_WAIT_S = 10
    for number in range(failures):  # failures just now (real attempts would have to wait)
        AccessAttempt.objects.create(username=f"name{number}", ip_address="10.6.6.7",
                                     user_agent="", failures_since_start=1)
    after_latest_failure(0)
    expected = "Wait 1 second," if wait == 1 else f"Wait {wait} seconds,"
    assert expected in attempt("10.6.6.7", "owner", PASSWORD).content.decode()
    after_latest_failure(wait - 1)
    assert "Wait 1 second," in attempt("10.6.6.7", "owner", PASSWORD).content.decode()
    after_latest_failure(wait)
    assert attempt("10.6.6.7", "owner", PASSWORD).status_code == 302


def test_per_name_limit_still_locks_from_a_noisy_address(owner, settings, after_latest_failure):
    settings.AXES_FAILURE_LIMIT = 3
    settings.LOGIN_THROTTLE_ADDRESS_FAILURES = 3
    for _ in range(3):
        attempt("10.6.6.8", "owner", "wrong")
    after_latest_failure(60)  # the address's wait long passed, the failures still in the window
    locked = attempt("10.6.6.8", "owner", PASSWORD)
    assert locked.status_code == 200 and "_auth_user_id" not in locked.client.session
    assert "Too many failed log-in attempts. For your protection" in locked.content.decode()
    assert attempt("10.6.6.9", "owner", PASSWORD).status_code == 302  # another address: in


def test_admin_login_is_throttled_too(administrator, settings):
    settings.AXES_FAILURE_LIMIT = 2
    url = reverse("admin:login")
    client = Client(REMOTE_ADDR="10.5.5.5")
    for _ in range(2):
        client.post(url, {"username": "administrator", "password": "wrong"})
    response = client.post(url, {"username": "administrator", "password": PASSWORD})
    # axes' lockout response (ours): 429 and the reason, not the admin's "enter a correct..."
    assert response.status_code == 429 and "_auth_user_id" not in client.session
    assert "Too many failed log-in attempts. For your protection" in response.content.decode()
    assert AuditEvent.objects.filter(action=Action.LOGIN_LOCKED).exists()
    # The refusal is not also counted as a failure (it would lengthen the lock).
    assert AuditEvent.objects.filter(action=Action.LOGIN_FAILED).count() == 2


def test_locked_out_until_an_administrator_runs_axes_reset(owner, settings):
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        attempt("10.4.4.4", "owner", "wrong")
    assert is_locked_out(attempt("10.4.4.4", "owner", PASSWORD))
    call_command("axes_reset_username", "owner")  # the admin's unlock (docs: sign-in throttling)
    assert attempt("10.4.4.4", "owner", PASSWORD).status_code == 302
    for _ in range(2):
        attempt("10.4.4.4", "owner", "wrong")
    call_command("axes_reset")  # everyone
    assert attempt("10.4.4.4", "owner", PASSWORD).status_code == 302


def test_behind_a_trusted_proxy_each_client_is_counted_apart(owner, settings):
    """The address is the audit log's: X-Forwarded-For when AUDIT_TRUST_X_FORWARDED_FOR."""
    settings.AUDIT_TRUST_X_FORWARDED_FOR = True
    settings.AXES_FAILURE_LIMIT = 2

    def via_proxy(client_address, password):
        return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=client_address).post(
            reverse("login"), {"username": "owner", "password": password})
    for _ in range(2):
        via_proxy("192.0.2.10", "wrong")
    assert is_locked_out(via_proxy("192.0.2.10", PASSWORD))
    row = AuditEvent.objects.filter(action=Action.LOGIN_LOCKED).get()
    assert row.client_address == "192.0.2.10"
    assert via_proxy("192.0.2.11", PASSWORD).status_code == 302  # another client, same proxy
