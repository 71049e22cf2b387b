from django.contrib import admin

from webapp.accounts.admin_access import RoleAdminMixin

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(RoleAdminMixin, admin.ModelAdmin):
    """Read-only: the admin can search the log but never add, change or delete a row."""

    list_display = ("at", "username", "action", "object_type", "object_id", "client_address")
    list_filter = ("action", "object_type")
    search_fields = ("username", "object_id", "client_address")
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
