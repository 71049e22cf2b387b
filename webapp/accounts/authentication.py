"""``Authorization: Token <key>`` against hashed, expiring tokens (django-rest-knox), noting
each token's last use for its owner's token page."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.plumbing import build_bearer_security_scheme_object
from knox.auth import TokenAuthentication
from rest_framework import exceptions

from webapp.accounts.services import note_use


class ApiTokenAuthentication(TokenAuthentication):
    """knox's check (digest compared in constant time; an expired token is deleted and refused
    with 401), plus ``last_used``. The header stays ``Token <key>``, as DRF's was, so clients
    and triage/client need no change."""

    def authenticate_credentials(self, token: bytes):
        try:  # knox decodes without a guard: a header that is not UTF-8 would be a 500
            token.decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("Invalid token: a key is plain ASCII.")
        return super().authenticate_credentials(token)

    def validate_user(self, auth_token):
        user, token = super().validate_user(auth_token)
        note_use(token)
        return user, token


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The schema's security scheme (drf-spectacular matches the exact class, not subclasses
    of knox's, so it needs its own)."""

    target_class = ApiTokenAuthentication
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return build_bearer_security_scheme_object(header_name="Authorization",
                                                   token_prefix=self.target.authenticate_header(""))
