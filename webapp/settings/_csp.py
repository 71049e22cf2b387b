"""Content-Security-Policy (django-csp's CSPMiddleware, issue 21): what a page may load and run.

Every page of the site loads scripts, styles, images and fonts from this site only, and runs no
inline script or style (the templates keep their behaviour in webapp/static/js and their looks in
webapp/static/css), so an injected <script> or onerror= attribute does nothing. No plugins, no
<base> pointing elsewhere, forms post to this site only, and no other site may frame a page
(clickjacking; X-Frame-Options says the same to older browsers).

The API docs (Swagger UI, Redoc) answer with a policy of their own (webapp.api.docs): their
bundles set styles inline.
"""

from csp.constants import NONE, SELF

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],  # scripts, styles, images, fonts, fetch(): this site only
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
