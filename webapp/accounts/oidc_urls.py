"""OpenID Connect sign-in: the redirect to the provider and the way back (``/oidc/...``).

Both are reached logged out (LoginRequiredMiddleware), and both answer 404 while OpenID Connect
is off (``OIDC_RP_CLIENT_ID`` unset): the routes always exist, so that what is served follows the
settings as they are when asked, not as they were at import. No OIDC logout view: the site's own
log-out ends the session here, and signing out of the hospital's provider is the provider's job.
"""

from functools import wraps

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404
from django.urls import path

from webapp.accounts.oidc_views import OidcCallbackView, OidcSignInView


def _when_enabled(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not settings.OIDC_ENABLED:
            raise Http404("OpenID Connect sign-in is not configured.")
        return view(request, *args, **kwargs)
    return login_not_required(wrapper)


urlpatterns = [
    path("authenticate/", _when_enabled(OidcSignInView.as_view()), name="oidc_authentication_init"),
    path("callback/", _when_enabled(OidcCallbackView.as_view()), name="oidc_authentication_callback"),
]
