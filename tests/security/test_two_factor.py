"""Two-factor sign-in for local accounts (issue 24), through the real pages: the password on the
login form, then the set-up page (its QR code and secret) or the code page, with RFC 6238 codes
computed here from the secret the page shows (tests/support/two_factor.py), never read from
django-otp. Required for administrators and the Django admin, optional for clinicians unless
TWO_FACTOR_REQUIRED_FOR_ALL; never asked of an OpenID Connect user (their provider asks), asked of
an LDAP one unless TWO_FACTOR_FOR_LDAP is off (a bind checks only the password)."""

import time

import pytest
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.support.factories import PASSWORD
from tests.support.two_factor import secret_from_page, totp
from webapp.accounts import services as tokens
from webapp.audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db

SET_UP = "/account/two-factor/set-up/"
VERIFY = "/account/two-factor/verify/"
LDAP_BACKEND = "webapp.accounts.ldap_backend.DirectoryLDAPBackend"
OIDC_BACKEND = "webapp.accounts.oidc_backend.DirectoryOIDCBackend"


@pytest.fixture
def no_throttle(settings):
    """django-otp waits after each wrong code (tested on its own below); the tests that type a
    wrong code and then the right one do not wait."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 0
    settings.OTP_STATIC_THROTTLE_FACTOR = 0


@pytest.fixture
def real_two_factor():
    """The test client's log-ins left as they are: not given a second factor (tests/conftest.py)."""
    from django.contrib.auth.signals import user_logged_in

    user_logged_in.disconnect(dispatch_uid="tests-two-factor")


def sign_in(user) -> Client:
    """The password step only, on the real login form."""
    client = Client(REMOTE_ADDR="10.9.8.7")
    response = client.post(reverse("login"), {"username": user.username, "password": PASSWORD})
    assert response.status_code == 302, response.content[:500]
    return client


def actions(user, action) -> int:
    return AuditEvent.objects.filter(username=user.username, action=action).count()


def set_up(client, code_used=None) -> tuple[str, list[str]]:
    """Scan (read the secret), confirm with the current code: the secret and recovery codes
    (and the code in ``code_used``, a list, for a test that types it again)."""
    page = client.get(SET_UP)
    secret = secret_from_page(page.content.decode())
    code = totp(secret)
    if code_used is not None:
        code_used.append(code)
    done = client.post(SET_UP, {"code": code, "next": "/cases/"})
    assert done.status_code == 200 and b"Your recovery codes" in done.content
    codes = [line.split("<code>")[1].split("</code>")[0]
             for line in done.content.decode().split("<li>")[1:]]
    return secret, codes


def test_the_code_helper_follows_rfc_6238():
    """RFC 6238 appendix B (SHA-1, T = 59 s and 1111111109 s), cut to 6 digits: 94287082 and
    07081804; the key is "12345678901234567890" in base32."""
    secret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp(secret, at=59) == "287082"
    assert totp(secret, at=1111111109) == "081804"


def test_an_administrator_sets_up_before_anything_else(administrator, no_throttle):
    client = sign_in(administrator)
    # Every page, the admin and the API tokens page included, sends them to set up first.
    for url in ("/cases/", "/admin/", "/admin/accounts/user/", "/account/tokens/", "/audit/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(SET_UP), url
    # The API through the half signed-in session: refused, saying why (not a redirect).
    api = client.get("/api/v1/cases/")
    assert api.status_code == 403 and "Two-factor" in api.json()["detail"]

    page = client.get(SET_UP)
    html = page.content.decode()
    assert page.status_code == 200 and '<svg' in html and 'class="qr-code"' in html
    assert "no-store" in page["Cache-Control"]
    secret = secret_from_page(html)
    assert TOTPDevice.objects.get(user=administrator).confirmed is False

    wrong = f"{(int(totp(secret)) + 1) % 1_000_000:06d}"
    refused = client.post(SET_UP, {"code": wrong})
    assert refused.status_code == 400 and b"not right" in refused.content
    assert actions(administrator, Action.TWO_FACTOR_FAILED) == 1
    assert client.get("/admin/").status_code == 302

    assert client.get(SET_UP).content.decode().count(secret) == 1  # the same secret on reload
    done = client.post(SET_UP, {"code": totp(secret), "next": "/admin/"})
    assert done.status_code == 200 and done.content.decode().count("<li><code>") == 10
    assert TOTPDevice.objects.get(user=administrator).confirmed is True
    assert actions(administrator, Action.TWO_FACTOR_ENABLED) == 1
    assert actions(administrator, Action.RECOVERY_CODES_CREATED) == 1
    assert client.get("/admin/").status_code == 200
    assert client.get("/cases/").status_code == 200
    assert client.get("/api/v1/cases/").status_code == 200


def test_an_administrator_with_an_authenticator_enters_a_code_after_the_password(
        administrator, no_throttle):
    secret, _ = set_up(sign_in(administrator))

    client = sign_in(administrator)
    response = client.get("/cases/?page=2")
    assert response.status_code == 302
    assert response["Location"] == f"{VERIFY}?next=/cases/%3Fpage%3D2"
    assert client.get("/admin/")["Location"].startswith(VERIFY)
    assert client.get(SET_UP)["Location"].startswith(VERIFY)  # no new phone with a password only
    page = client.get(VERIFY)
    assert b"Enter the 6-digit code" in page.content

    failed = actions(administrator, Action.TWO_FACTOR_FAILED)
    refused = client.post(VERIFY, {"code": "000000", "next": "/admin/"})
    assert refused.status_code == 400
    assert actions(administrator, Action.TWO_FACTOR_FAILED) == failed + 1
    # The next step's code (the app may be a little ahead; django-otp allows one step of drift).
    accepted = client.post(VERIFY, {"code": totp(secret, at=time.time() + 30), "next": "/admin/"})
    assert accepted.status_code == 302 and accepted["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_code_is_good_once(administrator):
    """Even while it is still on the phone (and within the step either side that is allowed)."""
    used = []
    set_up(sign_in(administrator), code_used=used)
    client = sign_in(administrator)
    replayed = client.post(VERIFY, {"code": used[0]})
    assert replayed.status_code == 400 and client.get("/cases/").status_code == 302


def test_guessing_is_slowed_down(administrator, settings):
    """django-otp's throttle: after a wrong code even the right one waits (OTP_TOTP_THROTTLE_FACTOR
    seconds, 1 by default, then twice as long...; a minute here, however slow the machine)."""
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    secret, _ = set_up(sign_in(administrator))
    client = sign_in(administrator)
    client.post(VERIFY, {"code": "000000"})
    refused = client.post(VERIFY, {"code": totp(secret, at=time.time() + 30)})
    assert refused.status_code == 400 and b"Too many wrong codes" in refused.content


def test_a_recovery_code_works_once(administrator, no_throttle):
    _, codes = set_up(sign_in(administrator))
    assert len(set(codes)) == 10

    client = sign_in(administrator)
    used = client.post(VERIFY, {"code": codes[0].upper(), "next": "/admin/"})  # case is forgiven
    assert used.status_code == 302 and client.get("/admin/").status_code == 200
    assert actions(administrator, Action.RECOVERY_CODE_USED) == 1
    assert StaticToken.objects.filter(device__user=administrator).count() == 9

    again = sign_in(administrator)
    assert again.post(VERIFY, {"code": codes[0]}).status_code == 400
    assert again.get("/admin/").status_code == 302
    assert again.post(VERIFY, {"code": codes[1]}).status_code == 302


def test_new_recovery_codes_replace_the_old(administrator, no_throttle):
    client = sign_in(administrator)
    _, old = set_up(client)
    page = client.post("/account/two-factor/recovery-codes/")
    assert page.status_code == 200 and page.content.decode().count("<li><code>") == 10
    assert actions(administrator, Action.RECOVERY_CODES_CREATED) == 2
    assert sign_in(administrator).post(VERIFY, {"code": old[0]}).status_code == 400


def test_a_clinician_is_not_asked_unless_they_turn_it_on(owner, no_throttle):
    client = sign_in(owner)
    assert client.get("/cases/").status_code == 200
    assert b"Off." in client.get("/account/two-factor/").content

    secret, codes = set_up(client)  # from their account page
    assert b"On." in client.get("/account/two-factor/").content
    later = sign_in(owner)
    assert later.get("/cases/")["Location"].startswith(VERIFY)
    assert later.post(VERIFY, {"code": codes[0]}).status_code == 302

    # Turning it off takes a current code, not just the open session.
    assert later.post("/account/two-factor/turn-off/", {"code": "000000"}).status_code == 302
    assert TOTPDevice.objects.filter(user=owner).exists()
    later.post("/account/two-factor/turn-off/", {"code": totp(secret, at=time.time() + 30)})
    assert not TOTPDevice.objects.filter(user=owner).exists()
    assert actions(owner, Action.TWO_FACTOR_DISABLED) == 1
    assert sign_in(owner).get("/cases/").status_code == 200


def test_the_setting_requires_it_of_everyone(owner, settings):
    settings.TWO_FACTOR_REQUIRED_FOR_ALL = True
    assert sign_in(owner).get("/cases/")["Location"].startswith(SET_UP)


def test_an_administrator_cannot_turn_it_off(administrator, no_throttle):
    client = sign_in(administrator)
    secret, _ = set_up(client)
    client.post("/account/two-factor/turn-off/", {"code": totp(secret, at=time.time() + 30)})
    assert TOTPDevice.objects.filter(user=administrator, confirmed=True).exists()


def signed_in_through(settings, user, backend) -> Client:
    """A session as the directory's backend leaves it (the sign-in itself is tested against real
    directories in the LDAP and OpenID Connect tests)."""
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, backend]
    client = Client()
    client.force_login(user, backend=backend)
    return client


def test_an_openid_connect_user_is_not_asked(make_user, settings, real_two_factor):
    """Their identity provider asked for the second factor (the hospital's policies): not again."""
    client = signed_in_through(settings, make_user("sso-admin", role="admin"), OIDC_BACKEND)
    assert client.get("/admin/").status_code == 200
    assert client.get("/cases/").status_code == 200
    assert b"organisation's directory" in client.get("/account/two-factor/").content
    assert client.get(SET_UP).status_code == 302


def test_an_ldap_user_is_asked_unless_the_hospital_says_otherwise(make_user, settings,
                                                                 real_two_factor):
    """An LDAP bind checks only the password: an administrator signed in that way sets up a
    second factor here like a local one, unless TWO_FACTOR_FOR_LDAP is off."""
    admin = make_user("ldap-admin", role="admin")
    asked = signed_in_through(settings, admin, LDAP_BACKEND).get("/admin/")
    assert asked.status_code == 302 and asked["Location"].startswith(SET_UP)
    settings.TWO_FACTOR_FOR_LDAP = False
    assert signed_in_through(settings, admin, LDAP_BACKEND).get("/admin/").status_code == 200


def test_an_api_token_is_its_own_credential(administrator):
    """A program with a token is not asked for a code, even beside a half signed-in session."""
    _, key = tokens.issue_token(administrator, name="bridge", days=1)
    program = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert program.get("/api/v1/cases/").status_code == 200
    half = sign_in(administrator)
    assert half.get("/api/v1/cases/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert half.get("/api/v1/cases/", HTTP_AUTHORIZATION="Token wrong").status_code == 401


def test_an_administrator_resets_a_lost_phone_in_the_admin(administrator, owner, login,
                                                           no_throttle):
    set_up(sign_in(owner))
    device = TOTPDevice.objects.get(user=owner)
    admin = login(administrator)  # the test client's log-in: verified (tests/support/two_factor)
    listing = admin.get("/admin/otp_totp/totpdevice/")
    assert listing.status_code == 200 and b"owner" in listing.content
    page = admin.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")
    assert page.status_code == 200 and device.key.encode() not in page.content  # no secret shown
    done = admin.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert done.status_code == 302
    assert not TOTPDevice.objects.filter(user=owner).exists()
    assert not StaticToken.objects.filter(device__user=owner).exists()
    reset = AuditEvent.objects.get(action=Action.TWO_FACTOR_DISABLED)
    assert reset.username == administrator.username and reset.object_id == str(owner.pk)
    assert sign_in(owner).get("/cases/").status_code == 200  # a clinician: not required again


def test_the_last_administrator_is_reset_from_the_command_line(administrator, no_throttle):
    from django.core.management import CommandError, call_command

    set_up(sign_in(administrator))
    call_command("reset_two_factor", "administrator")
    assert not TOTPDevice.objects.filter(user=administrator).exists()
    reset = AuditEvent.objects.get(action=Action.TWO_FACTOR_DISABLED)
    assert reset.user is None and reset.object_id == str(administrator.pk)
    assert sign_in(administrator).get("/admin/")["Location"].startswith(SET_UP)
    with pytest.raises(CommandError, match="nothing to reset"):
        call_command("reset_two_factor", "administrator")
    with pytest.raises(CommandError, match="No user"):
        call_command("reset_two_factor", "nobody")


def test_only_a_superuser_resets_a_superuser(administrator, make_user, login, no_throttle):
    root = make_user("root", role="admin")
    root.is_superuser = True
    root.save()
    set_up(sign_in(root))
    device = TOTPDevice.objects.get(user=root)
    admin = login(administrator)
    assert b"TOTP devices" in admin.get("/admin/").content
    refused = admin.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert refused.status_code == 403 and TOTPDevice.objects.filter(pk=device.pk).exists()
    assert not AuditEvent.objects.filter(action=Action.TWO_FACTOR_DISABLED).exists()
