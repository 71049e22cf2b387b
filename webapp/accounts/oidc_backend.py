"""OpenID Connect sign-in (mozilla-django-oidc): the provider's claims become our user, role and
teams, by the same rules as LDAP's groups (webapp.accounts.directory).

- **Matching: by issuer + ``sub``, never by e-mail or user name.** The library matches e-mail by
  default; but an e-mail address or a ``preferred_username`` is renamed and reused, and a local
  account may already carry it (a local "admin" must never be taken over by whoever the provider
  calls "admin"). The pair is kept in ``OidcIdentity``. A new user is named after
  ``preferred_username`` (else ``email``); a name already used here refuses the sign-in with a
  message instead of linking or inventing a second name.
- **Roles and teams at every sign-in**, from the groups claim (``OIDC_GROUPS_CLAIM``) merged from
  the ID token and the userinfo answer (Entra ID puts groups and app roles in the ID token only).
  A user in neither ``OIDC_CLINICIAN_GROUP`` nor ``OIDC_ADMIN_GROUP`` is refused, and no account
  is created for them.
- **A refusal or a provider fault is a message on the login page**, never an error page: the
  provider down, an error answer, a token that fails verification. It is raised as
  ``SignInRefused`` out of ``authenticate()``, not returned as ``None``: Django would then send
  ``user_login_failed``, which django-axes counts as a failed password for "no name" from the
  client's address, and after five refusals behind the hospital's proxy every OpenID Connect
  sign-in from there would be locked out. No password was tried; the callback view
  (webapp.accounts.oidc_views) records the audit row and shows the message instead.
"""

import logging

import jwt
import requests
from django.conf import settings
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import SuspiciousOperation, ValidationError
from django.db import transaction
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from webapp.accounts import directory
from webapp.accounts.models import OidcIdentity

logger = logging.getLogger(__name__)


def provider_name() -> str:
    return settings.OIDC_PROVIDER_NAME


class SignInRefused(Exception):
    """Not signed in: ``message`` for the login page, ``reason`` (and the user name, where one
    is known) for the audit row."""

    def __init__(self, message: str, reason: str, username: str = ""):
        super().__init__(reason)
        self.message, self.reason, self.username = message, reason, username


def unverified(reason: str) -> SignInRefused:
    return SignInRefused(f"The answer from {provider_name()} could not be verified, so you are "
                         "not signed in. Please try again.", reason)


def group_names(claims: dict) -> list[str]:
    """The groups claim as a list of names: providers send a list, some a single string."""
    value = claims.get(settings.OIDC_GROUPS_CLAIM) or []
    if isinstance(value, str):
        return [value]
    if isinstance(value, (list, tuple)):
        return [str(item) for item in value]
    return []


class DirectoryOIDCBackend(OIDCAuthenticationBackend):

    def authenticate(self, request, **kwargs):
        try:
            return super().authenticate(request, **kwargs)
        except requests.RequestException as exc:  # down, timed out, or an error answer
            logger.warning("OpenID sign-in: the provider failed: %s", type(exc).__name__)
            raise SignInRefused(f"{provider_name()} could not be reached or refused the sign-in. "
                                "Please try again; if it keeps failing, tell your IT department.",
                                "provider_error") from exc
        except (SuspiciousOperation, jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            # A token that fails verification (signature, nonce, expiry) or an answer that is
            # not what the protocol says: refused, and said so, never an error page.
            logger.warning("OpenID sign-in refused: %s: %s", type(exc).__name__, exc)
            raise unverified("unverified") from exc

    def get_userinfo(self, access_token, id_token, payload):
        """The ID token's claims with the userinfo answer's on top: groups and app roles may be
        in either, depending on the provider. Both must be about the same ``sub`` (OpenID
        Connect Core 5.3.2), and the ID token must be meant for this client (the library
        checks its signature and nonce, not its audience)."""
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if self.OIDC_RP_CLIENT_ID not in audiences:
            raise SuspiciousOperation("the ID token is for another client")
        userinfo = super().get_userinfo(access_token, id_token, payload)
        if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
            raise SuspiciousOperation("the userinfo answer is about another subject")
        return {**payload, **userinfo}

    def verify_claims(self, claims):
        """In a role group, or refused before any account is made."""
        if not claims.get("sub") or not claims.get("iss"):
            raise unverified("no_subject")
        is_admin, is_clinician = self._roles(claims)
        if not (is_admin or is_clinician):
            logger.info("OpenID sign-in refused: in no role group")
            raise SignInRefused(
                f"Your {provider_name()} account is not in a group that may use Pneumothorax "
                "Triage. Ask your IT department to add you to the clinicians' or the "
                "administrators' group.", "no_role_group",
                str(claims.get("preferred_username") or claims.get("email") or "")[:150])
        return True

    def get_or_create_user(self, access_token, id_token, payload):
        try:
            claims = self.get_userinfo(access_token, id_token, payload)
        except SuspiciousOperation as exc:
            logger.warning("OpenID sign-in refused: %s", exc)
            raise unverified("unverified") from exc
        self.verify_claims(claims)
        with transaction.atomic():
            identity = (OidcIdentity.objects.select_related("user")
                        .filter(issuer=claims["iss"], subject=str(claims["sub"])).first())
            if identity is not None:
                user = self.update_user(identity.user, claims)
            elif self.get_settings("OIDC_CREATE_USER", True):
                user = self.create_user(claims)
            else:
                raise SignInRefused("You have no account here yet. Ask an administrator.",
                                    "no_account")
            is_admin, is_clinician = self._roles(claims)
            directory.sync_directory_user(  # True: verify_claims made sure of a role group
                user, is_admin=is_admin, is_clinician=is_clinician,
                team_names=directory.teams_from_groups(group_names(claims)), source="oidc")
        return user

    def create_user(self, claims):
        username = self._username(claims)
        taken = username and self.UserModel.objects.filter(username__iexact=username).exists()
        if taken:
            logger.warning("OpenID sign-in refused: the user name is already used here")
            raise SignInRefused(
                f"An account named \u201c{username}\u201d already exists here and is not linked to "
                f"your {provider_name()} sign-in. Ask an administrator to rename it.",
                "username_taken", username)
        if not username:
            raise SignInRefused(f"{provider_name()} sent no usable user name (preferred_username "
                                "or email). Tell your IT department.", "no_username")
        user = self.UserModel.objects.create_user(username)  # no local password: unusable
        OidcIdentity.objects.create(user=user, issuer=claims["iss"], subject=str(claims["sub"]))
        return self.update_user(user, claims)

    def update_user(self, user, claims):
        """Name and e-mail as the provider says now (for display; never used to match)."""
        user.email = str(claims.get("email") or user.email)[:254]
        user.first_name = str(claims.get("given_name") or user.first_name)[:150]
        user.last_name = str(claims.get("family_name") or user.last_name)[:150]
        user.save(update_fields=["email", "first_name", "last_name"])
        return user

    def _roles(self, claims) -> tuple[bool, bool]:
        groups = set(group_names(claims))
        admin_group, clinician_group = settings.OIDC_ADMIN_GROUP, settings.OIDC_CLINICIAN_GROUP
        return bool(admin_group) and admin_group in groups, \
            bool(clinician_group) and clinician_group in groups

    def _username(self, claims) -> str:
        """``preferred_username``, else ``email``: the first that is a valid user name here (an
        Entra ID guest's UPN, ``alice_example.org#EXT#@...``, is not; their e-mail address is)."""
        max_length = self.UserModel._meta.get_field("username").max_length
        for claim in ("preferred_username", "email"):
            name = str(claims.get(claim) or "").strip()
            try:
                UnicodeUsernameValidator()(name)
            except ValidationError:
                continue
            if name and len(name) <= max_length:
                return name
        return ""
