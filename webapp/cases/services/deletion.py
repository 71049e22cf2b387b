from django.db import transaction

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Case
from webapp.cases.storage import private_storage


def delete_case(user, case: Case, client_address: str | None) -> None:
    """Delete a case, its images, jobs and files. The audit row stays (it names the case by id).
    Files go only after commit, so a rolled-back deletion keeps them."""
    names = []
    for image in case.images.select_related("job"):
        names += [image.original.name, image.preview.name]
        job = getattr(image, "job", None)
        if job is not None:
            names += [job.mask.name, job.overlay.name]
    audit.record(user, Action.DELETE, case, client_address,
                 detail={"images": case.images.count(), "owner": case.owner.get_username()})
    case.delete()
    transaction.on_commit(lambda: [private_storage.delete(n) for n in names if n], robust=True)
