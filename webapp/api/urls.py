"""/api/v1/ (REST API) and /api/schema/ + /api/docs/ + /api/redoc/ (OpenAPI 3, drf-spectacular).

The site's LoginRequiredMiddleware would send anonymous requests to the login page; API views
and the schema, which programs read, authenticate themselves (token or session; 401/403 JSON
otherwise), so they opt out of it. The two documentation pages are for browsers: an anonymous
visitor is sent to the login page (302, with ?next=) like everywhere else on the site. (DRF marks
its views login_not_required; Django's login_required around them puts the redirect back.)
/api/v1/ lists the endpoints; any other /api/ path answers JSON (views.root)."""

from django.contrib.auth.decorators import login_not_required, login_required
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from .docs import RedocDocsView, SwaggerDocsView
from .views import batches, cases, dicomweb, files, reviews, root
from webapp.performance.api import ModelPerformance  # this site's figures (issue 23)


def api(view_class):
    return login_not_required(view_class.as_view())


def browser_page(view_class, **initkwargs):
    return login_required(view_class.as_view(**initkwargs))


image = "cases/<uuid:case_id>/images/<uuid:image_id>/"
v1 = [
    path("", api(root.ApiRoot), name="root"),
    path("cases/", api(cases.CaseListCreate), name="case-list"),
    path("cases/<uuid:case_id>/", api(cases.CaseDetail), name="case-detail"),
    path(image, api(cases.ImageDetail), name="image-detail"),
    path(image + "original/", api(files.OriginalFile), name="image-original"),
    path(image + "preview/", api(files.PreviewFile), name="image-preview"),
    path(image + "mask/", api(files.MaskFile), name="image-mask"),
    path(image + "overlay/", api(files.OverlayFile), name="image-overlay"),
    path(image + "dicom-seg/", api(files.DicomSegFile), name="image-dicom-seg"),
    path(image + "dicom-sc/", api(files.DicomScFile), name="image-dicom-sc"),
    path(image + "dicom-sr/", api(files.DicomSrFile), name="image-dicom-sr"),
    path(image + "reviews/", api(reviews.ImageReviews), name="image-reviews"),
    path("model/performance/", api(ModelPerformance), name="model-performance"),  # issue 23
    path("batches/", api(batches.BatchListCreate), name="batch-list"),
    path("batches/<uuid:batch_id>/", api(batches.BatchDetail), name="batch-detail"),
    # DICOMweb STOW-RS (PS3.18 10.5); clients append "/studies" to a base URL: no slash too.
    path("dicomweb/studies/", api(dicomweb.StudiesStore), name="dicomweb-studies"),
    path("dicomweb/studies", api(dicomweb.StudiesStoreAlias), name="dicomweb-studies-alias"),
    path("dicomweb/studies/<str:study_uid>/", api(dicomweb.StudyStore), name="dicomweb-study"),
    path("dicomweb/studies/<str:study_uid>", api(dicomweb.StudiesStoreAlias),
         name="dicomweb-study-alias"),
]

app_name = "api"
urlpatterns = [
    path("v1/", include(v1)),
    path("schema/", api(SpectacularAPIView), name="schema"),
    path("docs/", browser_page(SwaggerDocsView, url_name="api:schema"), name="docs"),
    path("redoc/", browser_page(RedocDocsView, url_name="api:schema"), name="redoc"),
    # Last: any other path under /api/ is a JSON 404 (401 anonymous), not the site's HTML page.
    re_path(r"^.*$", api(root.UnknownPath), name="unknown"),
]
