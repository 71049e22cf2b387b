"""Two-factor sign-in for local accounts: an authenticator app (TOTP, RFC 6238) and single-use
recovery codes, on django-otp's devices (``otp_totp``, ``otp_static``). The views and the
middleware are thin; what is required of whom, and every change to a user's devices with its
audit row, is here.

Who is asked:
- Users who typed their password on this site: local accounts, and by default LDAP / Active
  Directory accounts too. An LDAP bind checks the password and nothing else: the directory's own
  multi-factor policies (Entra ID Conditional Access, AD FS, smart cards at the desktop) do not
  apply to it, so without a code here an administrator signed in over LDAP would have nothing
  but a password. A hospital that covers this otherwise sets ``TWO_FACTOR_FOR_LDAP=false``.
- Not users signed in with OpenID Connect: the identity provider asked for their second factor
  under the hospital's own policies; a second one here would be unmanaged and redundant.
- The sign-in method comes from the session's authentication backend
  (``webapp.accounts.directory.sign_in_method``); anything not known to be OpenID Connect (or LDAP
  with the setting off) is asked: a new or renamed backend must never switch two-factor off
  silently.
- A local user with a confirmed authenticator enters a code after the password, always.
- A local user without one must set one up first when two-factor is required of them:
  administrators, anyone allowed into the Django admin (``is_staff``), and everyone when
  ``TWO_FACTOR_REQUIRED_FOR_ALL`` is on.

The session is marked verified the way django-otp does it (``django_otp.login``), so
``request.user.is_verified()`` (django-otp's OTPMiddleware) tells the rest of the site.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

import django_otp
import segno
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY
from django.db import transaction
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from webapp.accounts import directory
from webapp.audit import services as audit
from webapp.audit.models import Action

RECOVERY_CODE_COUNT = 10
IDENTITY_PROVIDER_METHODS = frozenset({"oidc"})  # the provider asks for the second factor
TOTP_NAME = "Authenticator app"
RECOVERY_NAME = "Recovery codes"

VERIFY, SET_UP = "verify", "set_up"  # the step a signed-in user still owes

_TOTP_SHAPE = re.compile(r"^\d{6}$")


def sign_in_method(request) -> str:
    """How this session was signed in: "password", "ldap", "oidc" (or a backend's path)."""
    return directory.sign_in_method(request.session.get(BACKEND_SESSION_KEY, ""))


def asked_here(request) -> bool:
    """Is this session's second factor this site's to ask for (see the module's docstring)?"""
    method = sign_in_method(request)
    if method in IDENTITY_PROVIDER_METHODS:
        return False
    if method == "ldap":
        return settings.TWO_FACTOR_FOR_LDAP
    return True


def is_required(user) -> bool:
    """Must this user (when asked here at all) have two-factor before using the site?"""
    return bool(settings.TWO_FACTOR_REQUIRED_FOR_ALL or user.is_staff or user.is_superuser
                or getattr(user, "is_admin_role", False))


def is_enabled(user) -> bool:
    """Has the user a confirmed authenticator app?"""
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def pending_step(request) -> str | None:
    """VERIFY or SET_UP when this signed-in user must do that before anything else, else None.
    Cheap checks first: most requests are anonymous, directory users, or verified sessions."""
    user = request.user
    if not user.is_authenticated or not asked_here(request):
        return None
    if user.is_verified():
        return None
    if is_enabled(user):
        return VERIFY
    if is_required(user):
        return SET_UP
    return None


# --- setting up ---------------------------------------------------------------------------------

def pending_device(user) -> TOTPDevice:
    """The authenticator being set up: the same unconfirmed device (and so the same secret and
    QR code) until it is confirmed, so that reloading the page does not invalidate a phone that
    already scanned it."""
    device = TOTPDevice.objects.filter(user=user, confirmed=False).order_by("pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name=TOTP_NAME, confirmed=False)
    return device


def secret_text(device: TOTPDevice) -> str:
    """The secret in base32, in groups of four, for typing into an app by hand."""
    secret = base64.b32encode(device.bin_key).decode().rstrip("=")
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def qr_svg(device: TOTPDevice) -> str:
    """The otpauth:// URL as an inline SVG QR code (segno): drawn by the page itself, so the
    secret never goes to an image service, and no data: image is needed under the site's
    Content-Security-Policy. segno writes presentation attributes, no style attribute."""
    qr = segno.make(device.config_url, error="m")
    return qr.svg_inline(scale=4, border=2, title="QR code of your authenticator secret",
                         svgclass="qr-code", lineclass=None, dark="#000", light="#fff")


@dataclass(frozen=True)
class Outcome:
    ok: bool
    reason: str = ""
    recovery_codes: tuple[str, ...] = ()


def confirm_set_up(request, device: TOTPDevice, code: str) -> Outcome:
    """The user typed a code from the app that scanned ``device``: turn it on. It replaces any
    earlier authenticator, comes with a new set of recovery codes (returned, to show once) and
    marks this session verified."""
    user = request.user
    address = audit.client_address(request)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(pk=device.pk, user=user).first()
        if device is None:  # replaced or reset meanwhile (another tab, an administrator)
            return Outcome(False, "This set-up has expired: scan the new QR code below.")
        refusal = _throttled(device)
        if refusal is None and not device.verify_token(_clean(code)):
            refusal = ("That code is not right. Check that the phone's clock is right, and type "
                       "the code now shown.")
        if refusal is not None:
            audit.record(user, Action.TWO_FACTOR_FAILED, client_address=address,
                         detail={"step": "set_up"})
            return Outcome(False, refusal)
        device.confirmed = True
        device.save(update_fields=["confirmed"])
        TOTPDevice.objects.filter(user=user).exclude(pk=device.pk).delete()
        audit.record(user, Action.TWO_FACTOR_ENABLED, client_address=address,
                     detail={"device": device.name})
        codes = new_recovery_codes(user, client_address=address)
    django_otp.login(request, device)
    return Outcome(True, recovery_codes=tuple(codes))


def new_recovery_codes(user, *, client_address: str | None = None) -> list[str]:
    """RECOVERY_CODE_COUNT new single-use codes, replacing any earlier ones. Returned once, to
    show to the user; django-otp stores them as they are, so only the user's own page ever
    shows them, right after they are made."""
    with transaction.atomic():
        device, _ = StaticDevice.objects.get_or_create(user=user, name=RECOVERY_NAME,
                                                       defaults={"confirmed": True})
        device.token_set.all().delete()
        codes = [StaticToken.random_token() for _ in range(RECOVERY_CODE_COUNT)]
        StaticToken.objects.bulk_create(StaticToken(device=device, token=code) for code in codes)
        audit.record(user, Action.RECOVERY_CODES_CREATED, client_address=client_address,
                     detail={"count": len(codes)})
    return codes


def recovery_codes_left(user) -> int:
    return StaticToken.objects.filter(device__user=user, device__confirmed=True).count()


# --- signing in ---------------------------------------------------------------------------------

def verify(request, code: str) -> Outcome:
    """The code after the password: six digits go to the authenticator, anything else is tried
    as a recovery code (which then stops working). django-otp refuses a code already used (a TOTP
    code is good once, however long it stays on the phone) and slows down guessing: after each
    wrong code the next try must wait, doubling (OTP_TOTP_THROTTLE_FACTOR seconds, then 2x...)."""
    user = request.user
    address = audit.client_address(request)
    code = _clean(code)
    model = TOTPDevice if _TOTP_SHAPE.match(code) else StaticDevice
    with transaction.atomic():
        device = model.objects.select_for_update().filter(user=user, confirmed=True).first()
        refusal = None if device is None else _throttled(device)
        if refusal is None and (device is None or not device.verify_token(code)):
            refusal = ("That code is not right. Type the 6 digits now shown in your authenticator "
                       "app, or one of your recovery codes.")
        if refusal is not None:
            audit.record(user, Action.TWO_FACTOR_FAILED, client_address=address,
                         detail={"step": "verify", "kind": _kind(model)})
            return Outcome(False, refusal)
        if model is StaticDevice:
            audit.record(user, Action.RECOVERY_CODE_USED, client_address=address,
                         detail={"left": device.token_set.count()})
    django_otp.login(request, device)
    return Outcome(True)


# --- turning off --------------------------------------------------------------------------------

def turn_off(user, *, by, client_address: str | None = None, reason: str = "by_user") -> bool:
    """Remove the user's authenticator and recovery codes. By the user (only when it is not
    required of them, see the view) or by an administrator who resets a lost phone: the user
    then sets up a new one at their next sign-in if it is required. False if there was none."""
    with transaction.atomic():
        deleted = 0
        for model in (TOTPDevice, StaticDevice):
            count, _ = model.objects.filter(user=user).delete()
            deleted += count
        if deleted:
            # The row's user is who did it; its object, whose devices went.
            audit.record(by, Action.TWO_FACTOR_DISABLED, obj=user, client_address=client_address,
                         detail={"reason": reason})
    return bool(deleted)


def _throttled(device) -> str | None:
    allowed, data = device.verify_is_allowed()
    if allowed:
        return None
    return "Too many wrong codes: wait a few seconds, then type the code now shown."


def _clean(code: str) -> str:
    """Spaces and dashes are how people copy codes; recovery codes are stored in lower case."""
    return re.sub(r"[\s-]", "", str(code or "")).lower()[:64]


def _kind(model) -> str:
    return "authenticator" if model is TOTPDevice else "recovery_code"
