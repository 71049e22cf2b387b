"""Two-factor in tests: RFC 6238 codes computed here from the secret (independent of
django-otp, so that a test checks the product against the standard, not against itself), the
secret read back from the set-up page, and the test client's log-ins made whole.

``force_login`` and ``Client.login`` mean "this user is signed in": for a local user who must
have a second factor (an administrator), ``verify_test_client_logins`` also gives them a
confirmed authenticator and marks the session verified, as ``django_otp.login`` does after a
right code. So every existing test runs under production's rule (the admin is reachable only
verified) without typing codes; tests/security/test_two_factor.py turns this off and goes
through the real pages. A log-in through a real request (a login form, a browser) is left alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
import time


def totp(secret: str, at: float | None = None, step: int = 30, digits: int = 6) -> str:
    """The RFC 6238 code (HMAC-SHA1, RFC 4226's dynamic truncation) of a base32 ``secret`` as
    the set-up page shows it (groups of four, spaces allowed), at time ``at`` (now)."""
    text = re.sub(r"\s", "", secret).upper()
    key = base64.b32decode(text + "=" * (-len(text) % 8))
    counter = int((time.time() if at is None else at) // step)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10 ** digits).zfill(digits)


def secret_from_page(html: str) -> str:
    """The base32 secret shown as text on the set-up page."""
    found = re.search(r'id="two-factor-secret">([A-Z2-7 ]+)<', html)
    assert found, "no secret on the set-up page"
    return found.group(1)


def set_up_over_http(session, base_url: str) -> str:
    """Set up an authenticator for the user signed in on a ``requests`` session, through the real
    set-up page of a running site; returns the secret (for codes at later sign-ins)."""
    page = session.get(f"{base_url}/account/two-factor/set-up/", timeout=10)
    secret = secret_from_page(page.text)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = session.post(f"{base_url}/account/two-factor/set-up/", timeout=10,
                        data={"code": totp(secret), "csrfmiddlewaretoken": token},
                        headers={"Referer": f"{base_url}/account/two-factor/set-up/"})
    assert "Your recovery codes" in done.text, done.text[:2000]
    return secret


def set_up_in_browser(page) -> str:
    """The same in a Playwright page that the site has just sent to the set-up step."""
    page.wait_for_selector("#two-factor-secret")
    secret = page.inner_text("#two-factor-secret")
    page.fill("input[name=code]", totp(secret))
    page.click("form[action$='/set-up/'] button[type=submit]")
    page.wait_for_selector(".recovery-codes")
    return secret


def verify_test_client_logins(sender, request, user, **kwargs):
    """A ``user_logged_in`` receiver: see the module's docstring. The test client's log-in
    request is a bare HttpRequest, the only kind with no method (a real one always has one)."""
    if request is None or request.method is not None:
        return
    import django_otp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from webapp.accounts import two_factor

    if not two_factor.asked_here(request):
        return
    if not (two_factor.is_required(user) or two_factor.is_enabled(user)):
        return
    device = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="test client", confirmed=True)
    # What django_otp.login stores; it is not called itself because the test client's bare
    # request has no ``user`` for it to check the device against.
    request.session[django_otp.DEVICE_ID_SESSION_KEY] = device.persistent_id
