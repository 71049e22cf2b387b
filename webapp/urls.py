from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from webapp.accounts.forms import ThrottledAuthenticationForm
from webapp.audit.views import audit_list

admin.site.site_header = "Pneumothorax Triage administration"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="cases:list"), name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True,
                                                authentication_form=ThrottledAuthenticationForm),
         name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("cases/", include("webapp.cases.urls")),
    path("audit/", audit_list, name="audit"),
    path("api/", include("webapp.api.urls")),  # REST API v1, OpenAPI schema and docs
    path(settings.ADMIN_URL, admin.site.urls),
]

# A database error outside a view becomes the 503 page too (webapp.middleware).
handler500 = "webapp.middleware.server_error"
