"""The database unreachable for a moment: answer 503 with a clear page, never a 500.

Two places see a database error:
- a view (most requests: ATOMIC_REQUESTS opens the transaction around the view):
  ``DatabaseUnavailableMiddleware.process_exception``;
- a middleware before the view (the session and the user are read from the database):
  ``server_error``, installed as ``handler500`` in webapp.urls, turns those into the same 503.
Nothing is lost: the failed request wrote nothing (its transaction never began or rolled back),
and what was stored before stays in PostgreSQL.
"""

import logging
import sys

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader

log = logging.getLogger(__name__)

DATABASE_ERRORS = (OperationalError, InterfaceError)
RETRY_AFTER_S = 5


def database_unavailable(request) -> HttpResponse:
    wants_json = (request.path.endswith(".json") or request.path.startswith("/api/")
                  or "application/json" in request.headers.get("Accept", ""))
    if wants_json:
        response = JsonResponse({"error": "service_unavailable",
                                 "detail": "The database is briefly unavailable; nothing you "
                                           "uploaded before is lost. Try again in a moment."},
                                status=503)
    else:
        # A standalone template: rendering it must not touch the database (no user, no session).
        response = HttpResponse(loader.get_template("503.html").render({}), status=503)
    response["Retry-After"] = str(RETRY_AFTER_S)
    response["Cache-Control"] = "no-store"
    return response


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DATABASE_ERRORS):
            log.warning("database unavailable during %s %s: %s", request.method, request.path,
                        type(exception).__name__)
            return database_unavailable(request)
        return None


def server_error(request, *args, **kwargs):
    """handler500: a database error raised outside a view still becomes the 503 page."""
    exc = sys.exc_info()[1]
    if isinstance(exc, DATABASE_ERRORS):
        return database_unavailable(request)
    try:
        return HttpResponseServerError(loader.get_template("500.html").render({}))
    except Exception:
        return HttpResponseServerError("<h1>Server error (500)</h1>", content_type="text/html")
