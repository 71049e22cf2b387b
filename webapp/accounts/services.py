"""API tokens: issued, listed and revoked here, each change written to the audit log in the
caller's transaction. The key is returned once by ``issue_token`` and never stored (knox keeps a
SHA-512 digest), so a lost key is replaced, not recovered."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action

from .models import ApiToken

# How often a token's last use is written: a batch client makes hundreds of calls a minute, and
# "used today" is what its owner needs to see, not a write per request.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenLifetimeError(ValueError):
    pass


def max_days() -> int:
    return settings.API_TOKEN_TTL_DAYS


def issue_token(user, name: str = "", days: int | None = None, by=None,
                client_address: str | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user`` (by ``user`` themself, or by an administrator ``by``); returns
    the row and the key, which the caller shows once."""
    days = max_days() if days is None else days
    if not 1 <= days <= max_days():
        raise TokenLifetimeError(f"A token lasts between 1 and {max_days()} days.")
    token, key = ApiToken.objects.create(user=user, expiry=timedelta(days=days), name=name[:100])
    _audit(by or user, Action.TOKEN_CREATED, token, client_address,
           expires=token.expiry.isoformat())
    return token, key


def own_tokens(user):
    """The tokens a user may see and revoke: their own, unexpired."""
    return ApiToken.objects.filter(user=user, expiry__gt=timezone.now())


def revoke_token(token: ApiToken, by, client_address: str | None = None,
                 reason: str = "revoked") -> None:
    _audit(by, Action.TOKEN_REVOKED, token, client_address, reason=reason)
    token.delete()


def revoke_all_tokens(user, reason: str) -> int:
    """Every token of ``user`` (their password changed: whoever knew the old one may hold one)."""
    tokens = list(ApiToken.objects.filter(user=user))
    for token in tokens:
        revoke_token(token, by=user, reason=reason)
    return len(tokens)


def note_use(token: ApiToken) -> None:
    now = timezone.now()
    if token.last_used is None or now - token.last_used >= LAST_USED_RESOLUTION:
        # update(): no save() side effects, and only this column
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now


def _audit(by, action, token: ApiToken, client_address, **detail) -> None:
    audit.record(by, action, obj=token, client_address=client_address,
                 detail={"owner": token.user.get_username(), "prefix": token.token_key,
                         "name": token.name, **detail})
