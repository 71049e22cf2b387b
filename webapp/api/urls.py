"""/api/v1/ (REST API) and /api/schema/ + /api/docs/ + /api/redoc/ (OpenAPI 3, drf-spectacular).

The site's LoginRequiredMiddleware would send anonymous requests to the login page; API views
authenticate themselves (token or session, 401 otherwise), so they opt out of it."""

from django.contrib.auth.decorators import login_not_required
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from . import views


def api(view_class):
    return login_not_required(view_class.as_view())


image = "cases/<uuid:case_id>/images/<uuid:image_id>/"
v1 = [
    path("cases/", api(views.CaseListCreate), name="case-list"),
    path("cases/<uuid:case_id>/", api(views.CaseDetail), name="case-detail"),
    path(image, api(views.ImageDetail), name="image-detail"),
    path(image + "original/", api(views.OriginalFile), name="image-original"),
    path(image + "preview/", api(views.PreviewFile), name="image-preview"),
    path(image + "mask/", api(views.MaskFile), name="image-mask"),
    path(image + "overlay/", api(views.OverlayFile), name="image-overlay"),
    path(image + "dicom-seg/", api(views.DicomSegFile), name="image-dicom-seg"),
    path(image + "dicom-sc/", api(views.DicomScFile), name="image-dicom-sc"),
    path("batches/", api(views.BatchListCreate), name="batch-list"),
    path("batches/<uuid:batch_id>/", api(views.BatchDetail), name="batch-detail"),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", api(SpectacularAPIView), name="schema"),
    path("docs/", login_not_required(SpectacularSwaggerView.as_view(url_name="api:schema")), name="docs"),
    path("redoc/", login_not_required(SpectacularRedocView.as_view(url_name="api:schema")), name="redoc"),
]
