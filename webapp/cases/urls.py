from django.urls import path

from . import compare_views, patient_views, registry_views, views

app_name = "cases"
urlpatterns = [
    path("", views.case_list, name="list"),
    path("worklist.json", views.worklist_json, name="worklist_json"),
    path("new/", views.upload, name="upload"),
    path("model/", views.model_versions, name="model_versions"),
    path("<uuid:case_id>/", views.case_detail, name="detail"),
    path("<uuid:case_id>/report/", views.case_report, name="report"),
    path("<uuid:case_id>/status.json", views.case_status, name="status"),
    path("<uuid:case_id>/delete/", views.case_delete, name="delete"),
    path("<uuid:case_id>/patient/", patient_views.patient, name="patient"),
    path("<uuid:case_id>/images/<uuid:image_id>/<str:kind>.png", views.image_file, name="image_file"),
    path("<uuid:case_id>/images/<uuid:image_id>/compare/", compare_views.image_compare, name="compare"),
]

# The model registry (issue 23): administrators only.
urlpatterns += [
    path("model/registry/", registry_views.registry_page, name="model_registry"),
    path("model/registry/upload/", registry_views.upload, name="model_upload"),
    path("model/registry/rollback/", registry_views.roll_back, name="model_rollback"),
    path("model/registry/<int:pk>/promote/", registry_views.promote, name="model_promote"),
]
