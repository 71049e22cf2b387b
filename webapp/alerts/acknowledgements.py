"""Acknowledging a review-first film: "Seen by Dr X at 10:42".

An acknowledgement belongs to the film, not to one alert: whichever channel reached the
clinician (the webhook, the e-mail, or the worklist itself), one person saying "I have seen it"
answers every alert of that film. The first one stands: a second acknowledgement, from the same
clinician or a colleague who clicked a moment later, changes nothing and is not an error (both
of them did the right thing). Who may acknowledge is who may see the case
(``webapp.cases.services.access``): the caller passes an image found through it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import CaseImage, JobStatus

from .models import Acknowledgement


class NothingToAcknowledge(Exception):
    """The film is not (or not yet) review first: there is no alert to acknowledge."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def needs_acknowledgement(image: CaseImage) -> bool:
    """A finished film flagged review first (positive, above the review threshold, or larger
    than its prior: the job's ``review_first`` covers all three). ``image.job`` is read."""
    job = image.job
    return job.status == JobStatus.DONE and bool(job.review_first)


@dataclass(frozen=True)
class Outcome:
    acknowledgement: Acknowledgement
    created: bool  # False: someone had acknowledged the film already; theirs stands


def acknowledge(user, image: CaseImage, client_address: str | None = None) -> Outcome:
    """Record that ``user`` has seen the review-first ``image``, with its audit row, in one
    transaction; the first acknowledgement of a film is kept. Raises NothingToAcknowledge."""
    if not needs_acknowledgement(image):
        raise NothingToAcknowledge(
            "This film is not flagged review first, so there is no alert to acknowledge."
            if image.job.status == JobStatus.DONE else
            "This film has no result yet, so there is no alert to acknowledge.")
    with transaction.atomic():
        # get_or_create, not a check then an insert: two clinicians clicking at once meet the
        # OneToOne's unique index, and the loser reads the winner's row.
        acknowledgement, created = Acknowledgement.objects.select_related("by").get_or_create(
            image=image, defaults={"by": user})
        if created:
            audit.record(user, Action.ALERT_ACKNOWLEDGED, image, client_address,
                         detail={"case": str(image.case_id)})
    return Outcome(acknowledgement, created)


def display_name(user) -> str:
    """The full name a colleague recognises, else the username."""
    return (user.get_full_name() or "").strip() or user.get_username()


def seen_by(acknowledgement: Acknowledgement, now: datetime | None = None) -> str:
    """"Seen by Dr Ada Lovelace at 10:42" in the site's time zone (TIME_ZONE); the date is added
    when it was not today, so that an old acknowledgement does not read as a fresh one."""
    at = timezone.localtime(acknowledgement.at)
    today = timezone.localtime(now or timezone.now()).date()
    when = f"{at:%H:%M}" if at.date() == today else f"{at:%H:%M} on {at.day} {at:%b %Y}"
    return f"Seen by {display_name(acknowledgement.by)} at {when}"


def acknowledge_url(image: CaseImage) -> str:
    return reverse("alerts:acknowledge", kwargs={"case_id": image.case_id, "image_id": image.pk})


def image_state(image: CaseImage, acknowledgement: Acknowledgement | None, number: int = 1,
                of: int = 1, now: datetime | None = None) -> dict:
    """What the worklist and the case page show of one review-first film (JSON-ready): it is
    film ``number`` of the ``of`` films of its case (named only in a case of several)."""
    return {
        "image_id": str(image.pk),
        "number": number,
        "numbered": of > 1,
        "acknowledge_url": acknowledge_url(image),
        "acknowledged": acknowledgement is not None,
        "seen_by": seen_by(acknowledgement, now) if acknowledgement else "",
        "seen_at": acknowledgement.at.isoformat() if acknowledgement else None,
    }


def attach_to_rows(rows: list[dict], cases) -> list[dict]:
    """Each worklist row (``webapp.cases.services.worklist.worklist_row``, in the order of
    ``cases``) gets ``acknowledgements``: the state of each of its review-first films. The
    cases' images and jobs are prefetched (``worklist.with_images``): one query for the page's
    acknowledgements, whatever its length."""
    cases = list(cases)
    images = {case.pk: list(case.images.all()) for case in cases}
    films = {pk: [(number, image) for number, image in enumerate(of_case, start=1)
                  if needs_acknowledgement(image)] for pk, of_case in images.items()}
    wanted = [image.pk for pairs in films.values() for _, image in pairs]
    found = {a.image_id: a for a in Acknowledgement.objects.filter(image_id__in=wanted)
             .select_related("by")} if wanted else {}
    now = timezone.now()
    for row, case in zip(rows, cases):
        row["acknowledgements"] = [image_state(image, found.get(image.pk), number,
                                               len(images[case.pk]), now)
                                   for number, image in films[case.pk]]
    return rows


def state_for_image(image: CaseImage, number: int = 1, of: int = 1) -> dict | None:
    """The case page's: None where the film has nothing to acknowledge."""
    if not needs_acknowledgement(image):
        return None
    acknowledgement = Acknowledgement.objects.select_related("by").filter(image=image).first()
    return image_state(image, acknowledgement, number, of)
