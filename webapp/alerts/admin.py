"""Alerts for administrators: every alert with its state, and the failed ones easy to find (a
filter, a warning on the list while any exists) and to send again (the "retry" action)."""

from django.contrib import admin, messages

from webapp.accounts.admin_access import RoleAdminMixin
from webapp.admin_retry import retry_failed

from .admin_timings import AlertTimingsAdminMixin
from .models import Alert, AlertStatus
from .services import retry_alert


@admin.register(Alert)
class AlertAdmin(AlertTimingsAdminMixin, RoleAdminMixin, admin.ModelAdmin):
    # The two durations (admin_timings): upload -> delivery, delivery -> acknowledgement.
    list_display = ("created_at", "image", "channel", "reason", "status", "attempts",
                    "delivered_at", *AlertTimingsAdminMixin.TIMING_COLUMNS, "last_error")
    list_filter = ("status", "channel", "reason")
    search_fields = ("image__id", "image__case__id")
    readonly_fields = [f.name for f in Alert._meta.fields]
    date_hierarchy = "created_at"
    actions = ["retry"]

    def has_add_permission(self, request):
        return False  # alerts follow from finished films

    def has_change_permission(self, request, obj=None):
        return False  # their state changes by delivery or by the retry action only

    def has_delete_permission(self, request, obj=None):
        return False  # deleting one would let the same film alert again, unrecorded

    def changelist_view(self, request, extra_context=None):
        failed = Alert.objects.filter(status=AlertStatus.FAILED).count()
        if failed and request.GET.get("status__exact") != AlertStatus.FAILED:
            self.message_user(request, f"{failed} alert(s) could not be delivered: filter by "
                              "status Failed, read the last error, then retry them.",
                              messages.WARNING)
        return super().changelist_view(request, extra_context)

    @admin.action(description="Retry the selected failed alerts")
    def retry(self, request, queryset):
        retry_failed(self, request, queryset, AlertStatus.FAILED, retry_alert, "alert(s)")
