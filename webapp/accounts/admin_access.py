"""The admin role grants the Django admin for this product's models, without having to hand out
Django's per-model permissions one by one (superusers keep all rights anyway)."""


def _is_admin(request) -> bool:
    user = request.user
    return user.is_active and user.is_staff and getattr(user, "is_admin_role", False)


class RoleAdminMixin:
    def has_module_permission(self, request):
        return _is_admin(request)

    def has_view_permission(self, request, obj=None):
        return _is_admin(request)

    def has_add_permission(self, request):
        return _is_admin(request)

    def has_change_permission(self, request, obj=None):
        return _is_admin(request)

    def has_delete_permission(self, request, obj=None):
        return _is_admin(request)


class RoleInlineMixin(RoleAdminMixin):
    """The same for an inline, whose ``has_add_permission`` also takes the parent object."""

    def has_add_permission(self, request, obj=None):
        return _is_admin(request)


class SuperuserGuardMixin:
    """The user admin for an administrator who is not a superuser: they manage users and roles,
    but cannot raise anyone (themselves included) to superuser or staff, hand out groups or
    permissions, nor change or delete a superuser (or its password). Read-only fields are left
    out of the form, so a crafted POST that sets them changes nothing."""

    PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return fields
        return fields + tuple(f for f in self.PRIVILEGE_FIELDS if f not in fields)

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False  # also refuses the password form (UserAdmin.user_change_password)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False  # the bulk delete action checks each object too
        return super().has_delete_permission(request, obj)
