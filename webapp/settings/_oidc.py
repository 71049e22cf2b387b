"""OpenID Connect sign-in (mozilla-django-oidc; Microsoft Entra ID, Keycloak, Google Workspace):
off while ``OIDC_RP_CLIENT_ID`` is unset. How to register the site with a provider, and what each
setting does: docs/operate/oidc.md.

The provider's groups map to roles and teams exactly as LDAP's do (webapp.accounts.directory): a
user in neither ``OIDC_CLINICIAN_GROUP`` nor ``OIDC_ADMIN_GROUP`` is refused, and the mapping is
applied again at every sign-in. Users are matched by the provider's ``sub`` (never by e-mail or
user name: webapp.accounts.oidc_backend says why).
"""

from django.core.exceptions import ImproperlyConfigured

from ._environment import env

OIDC_RP_CLIENT_ID = env("OIDC_RP_CLIENT_ID", default="")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
OIDC_BACKEND = "webapp.accounts.oidc_backend.DirectoryOIDCBackend"

OIDC_RP_CLIENT_SECRET = env("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_OP_JWKS_ENDPOINT", default="")
# The ID token's signature is checked with the provider's published keys (JWKS): RS* or ES*,
# never HS256, which would make the client secret the signing key (refused below).
OIDC_RP_SIGN_ALGO = env("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env("OIDC_RP_SCOPES", default="openid email profile")
# PKCE on top of the client secret: a stolen authorization code is useless without the verifier
# kept in the user's session. Entra ID, Keycloak and Google all support it.
OIDC_USE_PKCE = env.bool("OIDC_USE_PKCE", default=True)
# A provider that hangs: a message on the login page after this long, not a hung web worker.
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT_S", default=10.0)
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", default="single sign-on")

# Claims -> roles and teams (the same rules as LDAP's groups; webapp.accounts.directory).
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", default="groups")
OIDC_CLINICIAN_GROUP = env("OIDC_CLINICIAN_GROUP", default="")
OIDC_ADMIN_GROUP = env("OIDC_ADMIN_GROUP", default="")

if OIDC_ENABLED:
    # A half-configured provider fails at start, with the names to set, not at a user's sign-in.
    _missing = [name for name in ("OIDC_RP_CLIENT_SECRET", "OIDC_OP_AUTHORIZATION_ENDPOINT",
                                  "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT",
                                  "OIDC_OP_JWKS_ENDPOINT") if not globals()[name]]
    if _missing:
        raise ImproperlyConfigured(f"OIDC_RP_CLIENT_ID is set: {', '.join(_missing)} must be set "
                                   "too (docs/operate/oidc.md)")
    if not OIDC_RP_SIGN_ALGO.startswith(("RS", "ES")):
        raise ImproperlyConfigured(f"OIDC_RP_SIGN_ALGO={OIDC_RP_SIGN_ALGO!r}: use the provider's "
                                   "RS256 (or ES256) keys, not a shared secret")
    if not (OIDC_CLINICIAN_GROUP or OIDC_ADMIN_GROUP):
        raise ImproperlyConfigured("OIDC_RP_CLIENT_ID is set: OIDC_CLINICIAN_GROUP or "
                                   "OIDC_ADMIN_GROUP must be set, or nobody may sign in")

# Added by base.py to INSTALLED_APPS and AUTHENTICATION_BACKENDS (after the local accounts').
OIDC_INSTALLED_APPS = ["mozilla_django_oidc"] if OIDC_ENABLED else []
OIDC_AUTHENTICATION_BACKENDS = [OIDC_BACKEND] if OIDC_ENABLED else []
