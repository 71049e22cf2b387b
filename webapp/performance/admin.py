"""Drift alarms for administrators, read-only: when each fired, whether the rule still holds,
the figures it fired on and how each channel's delivery went (a failed one says why)."""

from django.contrib import admin

from webapp.accounts.admin_access import RoleAdminMixin

from .models import DriftAlarm


@admin.register(DriftAlarm)
class DriftAlarmAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = ("model_version", "fired_at", "active", "checked_at", "deliveries")
    list_filter = ("active",)
    readonly_fields = [f.name for f in DriftAlarm._meta.fields]

    def has_add_permission(self, request):
        return False  # alarms follow from the rule (webapp.performance.drift)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # deleting one would let the same version alarm again, unrecorded
