"""Recording and reading clinicians' reviews. The pages, the API and the admin call these; access
is checked by the caller through ``webapp.cases.services.access.get_visible_image`` (so whoever
may see an image may review it, and a stranger gets 404 before anything here runs)."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import CaseImage, Job, JobStatus

from .models import COMMENT_MAX_LENGTH, Review, TrueLabel, Verdict


class ReviewRefused(Exception):
    """The review was not recorded; ``message`` says why, for a person. Nothing was written."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotReviewable(ReviewRefused):
    """The image has no result to review (its job is queued, running or failed)."""


class InvalidReview(ReviewRefused):
    """A value is not one of the allowed ones (the form and the API check first)."""


def _check_values(verdict: str, true_label: str, comment: str) -> None:
    if verdict not in Verdict.values:
        raise InvalidReview(f"The verdict must be one of {', '.join(Verdict.values)}.")
    if true_label not in TrueLabel.values:
        raise InvalidReview(f"The true label must be one of {', '.join(TrueLabel.values)}.")
    if len(comment) > COMMENT_MAX_LENGTH:
        raise InvalidReview(f"The comment is longer than {COMMENT_MAX_LENGTH} characters.")


@transaction.atomic
def record_review(user, image: CaseImage, verdict: str, true_label: str, comment: str = "",
                  client_address: str | None = None) -> tuple[Review, bool]:
    """Record ``user``'s review of ``image``'s result, replacing their earlier one; the review
    and its audit row commit together (a savepoint inside a request's transaction). Returns the
    review and whether it is the user's first of this image.

    The job row is locked first: a job being re-run cannot change the result between the check
    and the snapshot, and two posts of the same reviewer (a double click) wait for each other
    instead of both creating a review."""
    comment = (comment or "").strip()
    _check_values(verdict, true_label, comment)
    job = Job.objects.select_for_update().get(image_id=image.pk)
    if job.status != JobStatus.DONE:
        raise NotReviewable(f"This image has no result to review yet (its analysis is "
                            f"{job.status}); a result can be reviewed once the analysis is done.")
    previous = Review.objects.filter(image=image, reviewer=user).first()
    values = {"verdict": verdict, "true_label": true_label, "comment": comment,
              "model_version": job.model_version, "probability": job.probability,
              "positive": job.positive, "reviewed_at": timezone.now()}
    detail = {"case": str(image.case_id), **{k: v for k, v in values.items()
                                             if k not in ("comment", "reviewed_at")},
              # Free text may name the patient, and the audit log can never be edited: it keeps
              # the comment's length, the review keeps the comment.
              "comment_chars": len(comment)}
    if previous is None:
        review = Review.objects.create(image=image, reviewer=user, **values)
    else:
        detail["replaced"] = {"verdict": previous.verdict, "true_label": previous.true_label,
                              "comment_chars": len(previous.comment),
                              "reviewed_at": previous.reviewed_at.isoformat()}
        for name, value in values.items():
            setattr(previous, name, value)
        previous.save()
        review = previous
    detail["review"] = review.pk
    audit.record(user, Action.REVIEW, image, client_address, detail=detail)
    return review, previous is None


def reviews_for_images(images: Iterable[CaseImage]) -> dict:
    """{image id: that image's reviews, newest first} for every image given (an empty list for
    an image nobody reviewed), in one query; each review's ``image`` is the object given."""
    by_id = {image.pk: image for image in images}
    found = {image_id: [] for image_id in by_id}
    for review in Review.objects.filter(image_id__in=list(by_id)).select_related("reviewer"):
        review.image = by_id[review.image_id]
        found[review.image_id].append(review)
    return found


def own_review(reviews: Iterable[Review], user) -> Review | None:
    """``user``'s review among ``reviews``, if any (it fills their form in)."""
    return next((r for r in reviews if r.reviewer_id == getattr(user, "pk", None)), None)


def filter_reviewed(cases: QuerySet, reviewed: bool) -> QuerySet:
    """The worklist's "reviewed or not". A case awaits review while one of its images that has
    or will have a result (not failed) has no review; it is reviewed when none awaits review and
    someone reviewed it. A case whose every image failed has nothing to review: in neither."""
    awaiting = CaseImage.objects.filter(case=OuterRef("pk")).exclude(
        job__status=JobStatus.FAILED).exclude(Exists(Review.objects.filter(image=OuterRef("pk"))))
    if not reviewed:
        return cases.filter(Exists(awaiting))
    any_review = Review.objects.filter(image__case=OuterRef("pk"))
    return cases.filter(~Exists(awaiting), Exists(any_review))
