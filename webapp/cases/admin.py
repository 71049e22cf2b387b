from django.contrib import admin

from webapp.accounts.admin_access import RoleAdminMixin

from .models import Case, CaseImage, DeletedCase, Job, RegisteredModel


class CaseImageInline(admin.TabularInline):
    model = CaseImage
    fields = ("original_name", "source_format", "width", "height", "size_bytes")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(Case)
class CaseAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = ("id", "owner", "team", "created_at", "client_reference")
    list_filter = ("team", "created_at")
    search_fields = ("id", "owner__username", "team__name", "client_reference")
    # ``team`` stays editable: moving a case to another team is how a team with cases is retired.
    readonly_fields = ("id", "owner", "created_at", "study_metadata")
    inlines = [CaseImageInline]

    def has_add_permission(self, request):
        return False  # cases come from uploads, with their files, jobs and audit rows


@admin.register(Job)
class JobAdmin(RoleAdminMixin, admin.ModelAdmin):
    list_display = ("id", "image", "status", "attempts", "probability", "positive", "queued_at",
                    "finished_at", "model_version")
    list_filter = ("status", "positive", "model_version")
    search_fields = ("image__case__id", "image__id")
    # Results come from the model; an administrator may read them, not rewrite them.
    readonly_fields = [f.name for f in Job._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(DeletedCase)
class DeletedCaseAdmin(RoleAdminMixin, admin.ModelAdmin):
    """Tombstones of the cases the retention policy deleted: read-only, as the audit log they
    complete (webapp.cases.services.retention writes them, nothing else)."""

    list_display = ("case_id", "team_name", "case_created_at", "images", "deleted_at", "reason")
    list_filter = ("deleted_at", "team_name")
    search_fields = ("case_id", "team_name")
    date_hierarchy = "deleted_at"
    readonly_fields = [f.name for f in DeletedCase._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(RegisteredModel)
class RegisteredModelAdmin(RoleAdminMixin, admin.ModelAdmin):
    """Read-only: models are registered, promoted and rolled back on the registry page or by
    manage.py register_model, where each step is checked and audited."""

    list_display = ("version", "status", "validation", "registered_at", "promoted_at", "uploaded_by")
    list_filter = ("status", "validation")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
