"""A local user who still owes the second factor (a code, or setting up an authenticator) gets
that page before any other, the Django admin included (webapp.accounts.two_factor decides who).

After django-otp's OTPMiddleware (``request.user.is_verified()``). In ``process_view``, once
the URL is resolved, so that a page is recognised by its view rather than by its path:
- the step's own page and logging out are let through;
- pages anyone may open without signing in (``login_not_required``: the login page, the icon,
  the metrics that carry their own bearer token) are let through: a half signed-in user gets at
  most what an anonymous one gets;
- the REST API's views (also ``login_not_required``, they authenticate themselves): a request
  that carries an API token is let through, the token being its own credential (DRF then
  authenticates by the token alone, never by the session); one that would use the browser's
  half signed-in session gets a 403 JSON that says why, so no page or program can use a session
  whose second factor is still owed (and no API token can be made from one: the tokens page is
  an ordinary page, behind the step);
- everything else is redirected to the step's page, with ``?next=`` to come back.
Static files never get here (WhiteNoise answers them earlier).
"""

from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.views import redirect_to_login
from django.http import JsonResponse
from django.urls import reverse
from knox.settings import knox_settings

from webapp.accounts import two_factor

STEP_URLS = {two_factor.VERIFY: "accounts:two_factor_verify",
             two_factor.SET_UP: "accounts:two_factor_set_up"}
ALWAYS_ALLOWED = frozenset({"logout"})


class TwoFactorMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        step = two_factor.pending_step(request)
        if step is None:
            return None
        match = request.resolver_match
        if match.view_name in ALWAYS_ALLOWED or match.view_name == STEP_URLS[step]:
            return None
        is_api = "api" in match.namespaces
        if getattr(view_func, "login_required", True) is False:  # open to anonymous visitors
            if not is_api:
                return None
            if _carries_api_token(request):
                return None
            return JsonResponse(
                {"detail": "Two-factor sign-in is not finished: enter your code on the site "
                           "first, or use an API token."},
                status=403)
        return redirect_to_login(request.get_full_path(), reverse(STEP_URLS[step]),
                                 REDIRECT_FIELD_NAME)


def _carries_api_token(request) -> bool:
    """``Authorization: Token <key>``: DRF's first authentication class (knox) then decides by
    the key alone, and answers 401 to a bad one rather than falling back to the session."""
    scheme = request.META.get("HTTP_AUTHORIZATION", "").split(" ", 1)[0]
    return scheme.lower() == knox_settings.AUTH_HEADER_PREFIX.lower()
