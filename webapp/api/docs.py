"""The interactive API documentation (Swagger UI at /api/docs/, Redoc at /api/redoc/), served
entirely from this site: hospital networks may reach nothing else, and no page of the site may
try to.

- Scripts and styles come from drf-spectacular-sidecar (SPECTACULAR_SETTINGS SWAGGER_UI_DIST,
  SWAGGER_UI_FAVICON_HREF and REDOC_DIST = "SIDECAR"); the Redoc page uses its own template
  (api/redoc.html) because drf-spectacular's links Google Fonts.
- No inline script: Swagger UI's start-up script is a second request to the same URL
  (drf-spectacular's split view, ``?script=``), Redoc's is webapp/static/js/redoc-init.js, which
  also keeps the Redoc bundle from asking cdn.redoc.ly for its logo.
- Both pages answer with a Content-Security-Policy of their own (django-csp's ``csp`` decorator
  replaces the site's, settings/_csp.py): the same, except that both UIs set styles inline and
  Redoc runs its search in a blob: worker. None of these reach out.
- They are browser pages: an anonymous visitor is sent to the login page (webapp.api.urls), like
  on every other page, not answered with a bare 401.
"""

from csp.constants import NONE, SELF, UNSAFE_INLINE
from csp.decorators import csp
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

DOCS_POLICY = {
    "default-src": [SELF],
    "script-src": [SELF],
    "style-src": [SELF, UNSAFE_INLINE],
    "img-src": [SELF, "data:", "blob:"],
    "font-src": [SELF, "data:"],
    "worker-src": [SELF, "blob:"],
    "object-src": [NONE],
    "base-uri": [SELF],
    "form-action": [SELF],
    "frame-ancestors": [NONE],
}
same_origin_only = method_decorator(csp(DOCS_POLICY), name="dispatch")


@same_origin_only
class SwaggerDocsView(SpectacularSwaggerSplitView):
    pass


@same_origin_only
class RedocDocsView(SpectacularRedocView):
    template_name = "api/redoc.html"
