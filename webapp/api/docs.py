"""The interactive API documentation (Swagger UI at /api/docs/, Redoc at /api/redoc/), served
entirely from this site: hospital networks may reach nothing else, and no page of the site may
try to.

- Scripts and styles come from drf-spectacular-sidecar (SPECTACULAR_SETTINGS SWAGGER_UI_DIST,
  SWAGGER_UI_FAVICON_HREF and REDOC_DIST = "SIDECAR"); the Redoc page uses its own template
  (api/redoc.html) because drf-spectacular's links Google Fonts.
- Both pages answer with a Content-Security-Policy that allows this site only: the Redoc bundle
  shows a logo from cdn.redoc.ly in its menu, which the browser then does not fetch.
- They are browser pages: an anonymous visitor is sent to the login page (webapp.api.urls), like
  on every other page, not answered with a bare 401.
"""

from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerView

# Same origin only. Inline scripts and styles: drf-spectacular's pages start the UI with an inline
# script, and both UIs set styles inline; 'unsafe-eval' and blob: workers because their bundles
# may build code at run time (Redoc runs its search in a blob: worker). None of these reach out.
CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self' 'unsafe-inline' 'unsafe-eval' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "worker-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'self'",
])


class SameOriginOnly:
    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


class SwaggerDocsView(SameOriginOnly, SpectacularSwaggerView):
    pass


class RedocDocsView(SameOriginOnly, SpectacularRedocView):
    template_name = "api/redoc.html"
