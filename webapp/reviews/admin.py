from django.contrib import admin

from webapp.accounts.admin_access import RoleAdminMixin
from webapp.audit.admin import ReadOnlyAdminMixin

from .models import CorrectedOutline, Review


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdminMixin, RoleAdminMixin, admin.ModelAdmin):
    """Read-only, as the audit log is: a review is changed only by its reviewer reviewing again,
    which writes an audit row; an edit here would rewrite feedback without a trail."""

    list_display = ("reviewed_at", "image_id", "reviewer", "verdict", "true_label", "positive",
                    "probability", "model_version")
    list_filter = ("verdict", "true_label", "reviewed_at", "positive", "model_version")
    search_fields = ("image__id", "image__case__id", "reviewer__username")
    date_hierarchy = "reviewed_at"
    list_select_related = ("reviewer",)
    readonly_fields = [f.name for f in Review._meta.fields]


@admin.register(CorrectedOutline)
class CorrectedOutlineAdmin(ReadOnlyAdminMixin, RoleAdminMixin, admin.ModelAdmin):
    """Read-only: an outline is corrected in the viewer, as a new version with its audit row."""

    list_display = ("created_at", "image_id", "version", "empty", "created_by", "based_on_model_version")
    list_filter = ("empty", "created_at", "based_on_model_version")
    search_fields = ("image__id", "image__case__id", "created_by__username")
    list_select_related = ("created_by",)
    readonly_fields = [f.name for f in CorrectedOutline._meta.fields]
