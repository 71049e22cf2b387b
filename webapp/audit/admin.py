from django.contrib import admin

from webapp.accounts.admin_access import RoleAdminMixin

from .models import AuditEvent


class ReadOnlyAdminMixin:
    """For records that change only through their own service, with its audit row (the audit
    log; clinicians' reviews): the admin may list and read them, never add, change or delete one.
    List it before RoleAdminMixin, so that these refusals win; the role's view permission stays."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdminMixin, RoleAdminMixin, admin.ModelAdmin):
    """Read-only: the admin can search the log but never add, change or delete a row."""

    list_display = ("at", "username", "action", "object_type", "object_id", "client_address")
    list_filter = ("action", "object_type")
    search_fields = ("username", "object_id", "client_address")
    date_hierarchy = "at"
