"""The library's OpenID Connect views, with our way back on failure: the login page, with a
message that says what happened, and an audit row for a refused sign-in."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponseRedirect
from django.shortcuts import resolve_url
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from webapp.accounts.oidc_backend import SignInRefused
from webapp.audit import services as audit
from webapp.audit.models import Action


class OidcSignInView(OIDCAuthenticationRequestView):
    """Redirects to the provider, with state, nonce and PKCE kept in the session."""


class OidcCallbackView(OIDCAuthenticationCallbackView):
    """The provider sends the browser back here with a code; the library checks the state (an
    unknown one is a 400) and removes it from the session (no replay), the backend exchanges the
    code and maps the claims, or refuses (``SignInRefused``, which says why)."""

    @property
    def failure_url(self):
        return resolve_url(settings.LOGIN_URL)

    def get(self, request):
        try:
            return super().get(request)
        except SignInRefused as refusal:
            # Inside the request's transaction, as every audit row; "method" as on LOGIN rows.
            audit.record(None, Action.LOGIN_FAILED, client_address=audit.client_address(request),
                         detail={"method": "oidc", "reason": refusal.reason,
                                 "username": refusal.username})
            messages.error(request, refusal.message)
            return HttpResponseRedirect(self.failure_url)

    def login_failure(self):
        # The provider answered with an error (the user cancelled), no sign-in of this browser
        # was under way, or the account is inactive.
        messages.error(self.request, f"Sign-in with {settings.OIDC_PROVIDER_NAME} did not "
                                     "succeed. Please try again.")
        return super().login_failure()
