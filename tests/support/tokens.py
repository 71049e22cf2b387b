"""API tokens for tests, made the way the product makes them (webapp.accounts.services): hashed,
expiring. The key is only known at creation, so callers keep what this returns."""


def issue_key(user, **kwargs) -> str:
    from webapp.accounts.services import issue_token

    return issue_token(user, **kwargs)[1]
