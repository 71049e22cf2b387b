"""Who may see what. Object-level access is enforced in the queryset, so a stranger's case is
simply not found (404), never "forbidden" (which would confirm that it exists).

A clinician sees their own cases and their teams' cases (``Case.team``: the uploader's team at
submission), so that a ward reads and reviews each other's films; an administrator sees all.
Seeing is not deleting: only the uploader or an administrator deletes (``may_delete``)."""

from django.db.models import Q
from django.shortcuts import get_object_or_404

from webapp.accounts.models import Team
from webapp.cases.models import Case, CaseImage


def visible_cases(user):
    cases = Case.objects.all()
    if getattr(user, "is_admin_role", False):
        return cases
    if not getattr(user, "is_authenticated", False):
        return cases.none()
    # The user's teams as a subquery: a join through the members would repeat each owned case
    # once per member of its team (and ``distinct()`` would upset the worklist's ordering).
    teams = Team.objects.filter(members=user).values("pk")
    return cases.filter(Q(owner=user) | Q(team__in=teams))


def get_visible_case(user, case_id) -> Case:
    return get_object_or_404(visible_cases(user).select_related("owner", "team"), pk=case_id)


def get_visible_image(user, case_id, image_id) -> CaseImage:
    return get_object_or_404(
        CaseImage.objects.select_related("case", "job").filter(case__in=visible_cases(user)),
        pk=image_id, case_id=case_id,
    )


def may_delete(user, case: Case) -> bool:
    """Only the uploader or an administrator deletes a case; anyone else who sees it may not."""
    return bool(getattr(user, "is_admin_role", False) or case.owner_id == getattr(user, "pk", None))
