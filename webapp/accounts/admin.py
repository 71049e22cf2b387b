from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count
from knox.models import AuthToken

from webapp.accounts.admin_access import RoleAdminMixin, RoleInlineMixin, SuperuserGuardMixin
from webapp.accounts.admin_tokens import ApiTokenAdmin  # noqa: F401  (registers the token admin)
from webapp.accounts.oidc_admin import OidcIdentityAdmin  # noqa: F401  (OpenID Connect links)
from webapp.accounts.two_factor_admin import AuthenticatorAdmin  # noqa: F401  (two-factor resets)

from .models import Team, User

# knox's own token admin is for its swapped-out model, and offers to create tokens for anyone:
# tokens are shown (prefix only) and revoked in ApiTokenAdmin. "knox" comes before this app in
# INSTALLED_APPS, so its admin is registered by now.
if admin.site.is_registered(AuthToken):
    admin.site.unregister(AuthToken)


class TeamMembershipInline(RoleInlineMixin, admin.TabularInline):
    """A user's teams, on the user's page (the team's page has the same list the other way)."""

    model = Team.members.through
    verbose_name, verbose_name_plural = "team", "teams"
    autocomplete_fields = ("team",)
    extra = 0


@admin.register(User)
class PneumothoraxUserAdmin(SuperuserGuardMixin, RoleAdminMixin, UserAdmin):
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active", "teams")
    fieldsets = UserAdmin.fieldsets + (("Role", {"fields": ("role",)}),)
    add_fieldsets = UserAdmin.add_fieldsets + (("Role", {"fields": ("role",)}),)
    inlines = [TeamMembershipInline]


@admin.register(Team)
class TeamAdmin(RoleAdminMixin, admin.ModelAdmin):
    """Members see each other's cases. A team that still has cases cannot be deleted (Case.team
    is PROTECT): move its cases to another team first, or remove the members instead."""

    list_display = ("name", "member_count", "created_at")
    search_fields = ("name", "members__username")
    filter_horizontal = ("members",)
    readonly_fields = ("created_at",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(member_count=Count("members"))

    @admin.display(description="members", ordering="member_count")
    def member_count(self, team):
        return team.member_count
