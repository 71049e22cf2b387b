"""DICOM nodes (who may send, who owns what they send, where results go) and the deliveries of
results to them, with a retry for failed ones."""

from django.contrib import admin

from webapp.accounts.admin_access import RoleAdminMixin
from webapp.admin_retry import retry_failed

from .models import Delivery, DeliveryStatus, DicomNode
from .services.delivery import retry_delivery


@admin.register(DicomNode)
class DicomNodeAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = ("ae_title", "host", "port", "direction", "owner", "team", "results_node",
                    "enabled")
    list_filter = ("direction", "enabled", "team")
    search_fields = ("ae_title", "host", "name", "owner__username")
    autocomplete_fields = ()


@admin.register(Delivery)
class DeliveryAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = ("case", "node", "status", "attempts", "created_at", "finished_at", "error")
    list_filter = ("status", "node")
    search_fields = ("case__id", "node__ae_title")
    readonly_fields = [f.name for f in Delivery._meta.fields]
    actions = ["retry"]

    def has_add_permission(self, request):
        return False  # deliveries follow from finished cases

    @admin.action(description="Retry the selected failed deliveries")
    def retry(self, request, queryset):
        retry_failed(self, request, queryset, DeliveryStatus.FAILED, retry_delivery, "delivery(ies)")
