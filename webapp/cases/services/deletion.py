"""Deleting a case: its rows go in the caller's transaction, with the audit row; its files only
after commit, so a rolled-back deletion keeps them. Only the uploader or an administrator may
delete (``access.may_delete``): teammates see and review a case, they do not remove it from the
ward's record. The check is here, not only in the views, so no interface can skip it.

The system deletes too (the retention policy, ``services.retention``): no user, so no access
check, and it leaves a tombstone (``DeletedCase``) saying what went, when and why."""

from django.core.exceptions import PermissionDenied
from django.db.models import Max, Min
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Case, DeletedCase
from webapp.cases.services import access, files


def delete_case(user, case: Case, client_address: str | None) -> None:
    """Delete a case, its images, jobs and files. The audit row stays (it names the case by id).
    Raises PermissionDenied (403: the user sees the case, so it is no secret) for a teammate."""
    if not access.may_delete(user, case):
        raise PermissionDenied("Only the uploader or an administrator may delete a case.")
    images = list(case.images.select_related("job"))
    names = [name for image in images for name in files.image_files(image)]
    # Everything else in the case's folder too: earlier runs' results and the outlines that
    # clinicians corrected (webapp.reviews.outlines), which no job field names.
    names += sorted(set(files.case_folder_files(case.pk)) - set(names))
    audit.record(user, Action.DELETE, case, client_address,
                 detail={"images": len(images), "owner": case.owner.get_username()})
    case.delete()
    files.remove_on_commit(names)


def delete_case_by_system(case: Case, action: str, reason: str) -> DeletedCase:
    """Delete a case as ``delete_case`` does, with no user behind it: an audit row of ``action``
    (no user, no address) and a tombstone, both in the caller's transaction, which the caller
    opens and in which it has locked the case and checked that it may go. Files left in the
    case's folder by earlier runs (a superseded result, an earlier run's DICOM objects) go too:
    the system promises that nothing of the case stays on disk."""
    images = list(case.images.select_related("job"))
    names = [name for image in images for name in files.image_files(image)]
    deleted = _what_goes(case, images, names)
    leftovers = sorted(set(files.case_folder_files(case.pk)) - set(names))
    deleted["other_files"] = len(leftovers)
    uploaded = case.images.aggregate(first=Min("created_at"), last=Max("created_at"))
    tombstone = DeletedCase.objects.create(
        case_id=case.pk, team=case.team, team_name=case.team.name if case.team else "",
        case_created_at=case.created_at, first_uploaded_at=uploaded["first"],
        last_uploaded_at=uploaded["last"], images=len(images), deleted=deleted,
        deleted_at=timezone.now(), reason=reason)
    audit.record(None, action, case, None,
                 detail={"images": len(images), "owner": case.owner.get_username(),
                         "reason": reason, "tombstone": tombstone.pk})
    case.delete()
    files.remove_on_commit(names + leftovers)
    return tombstone


def _what_goes(case: Case, images: list, names: list[str]) -> dict:
    """Counts of what a deletion removes, by kind, for the tombstone (files: those on disk)."""
    jobs = [image.job for image in images if getattr(image, "job", None) is not None]
    on_disk = {name for name in names if files.exists(name)}
    dicom_results = [files.result_name(job.image, kind, job.run_token, "dcm")
                     for job in jobs if job.run_token for kind in ("seg", "sc", "sr")]
    return {
        "originals": sum(image.original.name in on_disk for image in images),
        "previews": sum(image.preview.name in on_disk for image in images),
        "masks": sum(job.mask.name in on_disk for job in jobs),
        "overlays": sum(job.overlay.name in on_disk for job in jobs),
        "dicom_results": sum(name in on_disk for name in dicom_results),
        "jobs": len(jobs),
        "reviews": sum(image.reviews.count() for image in images),
        "pacs_deliveries": case.deliveries.count(),
    }
