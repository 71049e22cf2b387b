from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from webapp.accounts.admin_access import RoleAdminMixin

from .models import User


@admin.register(User)
class PneumothoraxUserAdmin(RoleAdminMixin, UserAdmin):
    list_display = ("username", "email", "role", "is_active", "last_login")
    list_filter = ("role", "is_active")
    fieldsets = UserAdmin.fieldsets + (("Role", {"fields": ("role",)}),)
    add_fieldsets = UserAdmin.add_fieldsets + (("Role", {"fields": ("role",)}),)
