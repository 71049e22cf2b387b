"""Who may see what. Object-level access is enforced in the queryset, so a stranger's case is
simply not found (404), never "forbidden" (which would confirm that it exists)."""

from django.shortcuts import get_object_or_404

from webapp.cases.models import Case, CaseImage


def visible_cases(user):
    cases = Case.objects.all()
    if getattr(user, "is_admin_role", False):
        return cases
    if not getattr(user, "is_authenticated", False):
        return cases.none()
    return cases.filter(owner=user)


def get_visible_case(user, case_id) -> Case:
    return get_object_or_404(visible_cases(user).select_related("owner"), pk=case_id)


def get_visible_image(user, case_id, image_id) -> CaseImage:
    return get_object_or_404(
        CaseImage.objects.select_related("case", "job").filter(case__in=visible_cases(user)),
        pk=image_id, case_id=case_id,
    )
