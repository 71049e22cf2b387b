"""Two-factor in the Django admin: an administrator sees who has an authenticator and resets a
user's (a lost phone) by deleting it; the user's recovery codes go with it, and the user sets up
a new one at their next sign-in where it is required. Nobody sees or edits a secret or a recovery
code here, nor adds a device for someone else: django-otp's own admin pages (which offer that)
are replaced. A non-superuser administrator cannot reset a superuser's (as with its password)."""

from django.contrib import admin
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from webapp.accounts import two_factor
from webapp.accounts.admin_access import RoleAdminMixin
from webapp.audit.services import client_address

# "django_otp.plugins.*" come before this app in INSTALLED_APPS: their admins are registered.
for _model in (TOTPDevice, StaticDevice):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)


@admin.register(TOTPDevice)
class AuthenticatorAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = ("user", "name", "confirmed", "created_at", "last_used_at")
    list_filter = ("confirmed",)
    search_fields = ("user__username", "user__email")
    fields = ("user", "name", "confirmed", "created_at", "last_used_at")
    readonly_fields = fields
    actions = ["delete_selected"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False  # view only: the secret is not a field

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.user.is_superuser and not request.user.is_superuser:
            return False  # the bulk action asks per object too
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj):
        two_factor.turn_off(obj.user, by=request.user, client_address=client_address(request),
                            reason="reset_by_administrator")

    def delete_queryset(self, request, queryset):
        for device in queryset.select_related("user"):
            self.delete_model(request, device)
