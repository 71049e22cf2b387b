"""Included under /cases/ (webapp/urls.py), beside the cases app's own URLs."""

from django.urls import path

from . import views

app_name = "reviews"
urlpatterns = [
    path("<uuid:case_id>/images/<uuid:image_id>/review/", views.review_image, name="review"),
    path("<uuid:case_id>/images/<uuid:image_id>/outline/", views.outline, name="outline"),
]
