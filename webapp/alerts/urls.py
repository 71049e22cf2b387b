"""Included under /alerts/ (webapp/urls.py)."""

from django.urls import path

from . import views

app_name = "alerts"
urlpatterns = [
    path("cases/<uuid:case_id>/images/<uuid:image_id>/acknowledge/", views.acknowledge_image,
         name="acknowledge"),
    path("timings/", views.timings_page, name="timings"),
]
