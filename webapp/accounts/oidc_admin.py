"""OpenID Connect identities in the admin: which provider account (issuer + ``sub``) signs in as
which user. Read-only: links are made by the first sign-in only, never typed in (a mistyped
subject would hand an account to someone else). Deleting one unlinks the account: the next
sign-in with that provider account then needs a free user name (webapp.accounts.oidc_backend)."""

from django.contrib import admin

from webapp.accounts.admin_access import RoleAdminMixin

from .models import OidcIdentity

SHOWN = ("user", "issuer", "subject", "created_at")


@admin.register(OidcIdentity)
class OidcIdentityAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = SHOWN
    search_fields = ("user__username", "subject")
    fields = readonly_fields = SHOWN
    list_select_related = ("user",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
