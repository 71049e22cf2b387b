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
