from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from webapp.audit.views import audit_list

admin.site.site_header = "Pneumothorax Triage administration"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="cases:list"), name="home"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("cases/", include("webapp.cases.urls")),
    path("audit/", audit_list, name="audit"),
    path(settings.ADMIN_URL, admin.site.urls),
]
