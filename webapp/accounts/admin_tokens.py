"""API tokens in the admin: who has which (by prefix), until when, last used; an administrator
revokes one here (audited). No key is readable: only its digest is stored, and the digest is not
shown either. Tokens are created by their owner (the "API tokens" page) or with
``manage.py create_api_token``."""

from django.contrib import admin

from webapp.accounts import services
from webapp.accounts.admin_access import RoleAdminMixin
from webapp.audit.services import client_address

from .models import ApiToken

SHOWN = ("user", "name", "token_key", "created", "expiry", "last_used")


@admin.register(ApiToken)
class ApiTokenAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = SHOWN
    list_filter = ("expiry",)
    search_fields = ("user__username", "name", "token_key")
    fields = readonly_fields = SHOWN
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.user.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        services.revoke_token(obj, by=request.user, client_address=client_address(request))

    def delete_queryset(self, request, queryset):
        for token in queryset.select_related("user"):
            self.delete_model(request, token)
