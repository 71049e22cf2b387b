"""Deleting a case: its rows go in the request's transaction, with the audit row; its files only
after commit, so a rolled-back deletion keeps them. Only the uploader or an administrator may
delete (``access.may_delete``): teammates see and review a case, they do not remove it from the
ward's record. The check is here, not only in the views, so no interface can skip it."""

from django.core.exceptions import PermissionDenied

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Case
from webapp.cases.services import access, files


def delete_case(user, case: Case, client_address: str | None) -> None:
    """Delete a case, its images, jobs and files. The audit row stays (it names the case by id).
    Raises PermissionDenied (403: the user sees the case, so it is no secret) for a teammate."""
    if not access.may_delete(user, case):
        raise PermissionDenied("Only the uploader or an administrator may delete a case.")
    images = list(case.images.select_related("job"))
    names = [name for image in images for name in files.image_files(image)]
    audit.record(user, Action.DELETE, case, client_address,
                 detail={"images": len(images), "owner": case.owner.get_username()})
    case.delete()
    files.remove_on_commit(names)
