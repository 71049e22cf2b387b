from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from webapp.accounts.forms import ThrottledAuthenticationForm
from webapp.audit.views import audit_list
from webapp.monitoring.views import metrics

admin.site.site_header = "Pneumothorax Triage administration"


class FaviconView(RedirectView):
    """Browsers ask for /favicon.ico whatever the page says (the admin's pages name no icon):
    send them to the static file. The URL is looked up per request, not at import, because
    production's manifest storage knows the hashed name only after collectstatic."""

    permanent = False

    def get_redirect_url(self, *args, **kwargs):
        return static("favicon.ico")


urlpatterns = [
    path("", RedirectView.as_view(pattern_name="cases:list"), name="home"),
    path("favicon.ico", login_not_required(FaviconView.as_view()), name="favicon"),  # no login: an icon
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True,
                                                authentication_form=ThrottledAuthenticationForm),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # OpenID Connect sign-in: 404 while OIDC_RP_CLIENT_ID is unset (webapp.accounts.oidc_urls).
    path("oidc/", include("webapp.accounts.oidc_urls")),
    path("cases/", include("webapp.cases.urls")),
    path("cases/", include("webapp.reviews.urls")),  # .../images/<image>/review/ (issue 11)
    path("alerts/", include("webapp.alerts.urls")),  # acknowledgements, timings (issue 22)
    path("performance/", include("webapp.performance.urls")),  # films behind the site's figures
    path("audit/", audit_list, name="audit"),
    path("account/", include("webapp.accounts.urls")),  # the user's own API tokens (issue 21)
    path("api/", include("webapp.api.urls")),  # REST API v1, OpenAPI schema and docs
    path("metrics", metrics, name="metrics"),  # Prometheus; a bearer token, no login (issue 15)
    path(settings.ADMIN_URL, admin.site.urls),
]

# A database error outside a view becomes the 503 page too (webapp.middleware).
handler500 = "webapp.middleware.server_error"
