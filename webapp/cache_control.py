"""Responses with patient data are never kept by a browser's or a proxy's cache."""

from django.utils.cache import patch_cache_control

from webapp.middleware import DATABASE_ERRORS


class PrivateResponseMiddleware:
    """``Cache-Control: private, no-store`` on every response to a signed-in user (a session or
    an API token: DRF hands its user to the Django request): the case page, the report, the
    worklist, the audit log and the API's JSON hold patient data, which neither a shared
    workstation's browser (its back button after log-out, its disk cache) nor a proxy may keep.
    Directives a view set are kept (``patch_cache_control``: ``never_cache``'s stay). Static
    files never get here (WhiteNoise answers them earlier in MIDDLEWARE); anonymous answers
    (the log-in page, the metrics) keep their own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if _signed_in(request):
            patch_cache_control(response, private=True, no_store=True)
        return response


def _signed_in(request) -> bool:
    user = getattr(request, "user", None)
    try:
        return bool(user is not None and user.is_authenticated)
    except DATABASE_ERRORS:  # the session's user could not be read: the 503 page is no-store
        return False
