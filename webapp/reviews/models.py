"""A clinician's review of one image's result.

One current review per (image, reviewer): a clinician who changes their mind reviews again and
the new verdict replaces theirs, as a hospital expects each reader's latest word to stand. What
they said before is not lost: every review writes an audit row (``Action.REVIEW``) with the
verdict, the label and what it replaced, and the audit log is append-only.

The model's output is copied into the review (a snapshot), because a job may be re-run with
another model: the feedback must say what the clinician agreed or disagreed with, not what the
job says today.
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from webapp.cases.models import CaseImage
from webapp.cases.storage import get_private_storage

# Enough for a few sentences of reasoning; a report belongs in the hospital's own system.
COMMENT_MAX_LENGTH = 2000


class Verdict(models.TextChoices):
    AGREE = "agree", "Agree with the result"
    DISAGREE = "disagree", "Disagree with the result"


class TrueLabel(models.TextChoices):
    PRESENT = "present", "Pneumothorax present"
    ABSENT = "absent", "No pneumothorax"
    UNCERTAIN = "uncertain", "Uncertain"


class Review(models.Model):
    # CASCADE: deleting a case deletes its feedback with its files; the audit rows stay.
    image = models.ForeignKey(CaseImage, on_delete=models.CASCADE, related_name="reviews")
    # PROTECT: as for audit rows, a reviewer is deactivated, never deleted.
    reviewer = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                 related_name="reviews")
    verdict = models.CharField(max_length=16, choices=Verdict.choices)
    true_label = models.CharField(max_length=16, choices=TrueLabel.choices)
    comment = models.TextField(max_length=COMMENT_MAX_LENGTH, blank=True)
    # The job's result when the review was given.
    model_version = models.CharField(max_length=100, blank=True)
    probability = models.FloatField(null=True, blank=True)
    positive = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)  # the reviewer's first review
    reviewed_at = models.DateTimeField(default=timezone.now, db_index=True)  # their latest

    class Meta:
        ordering = ["-reviewed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["image", "reviewer"], name="review_one_per_image_and_reviewer"),
            models.CheckConstraint(condition=models.Q(verdict__in=Verdict.values),
                                   name="review_verdict_known"),
            models.CheckConstraint(condition=models.Q(true_label__in=TrueLabel.values),
                                   name="review_true_label_known"),
        ]

    def __str__(self):
        return f"Review of image {self.image_id} by {self.reviewer_id}: {self.verdict}, {self.true_label}"

    @property
    def result_changed(self) -> bool:
        """Whether the image's result differs from the one reviewed (the job was re-run)."""
        job = self.image.job
        return (job.model_version, job.probability, job.positive) != (
            self.model_version, self.probability, self.positive)


class CorrectedOutline(models.Model):
    """A clinician's outline of the pneumothorax on one film, drawn in the viewer: the ground
    truth that the model's outline (``Job.mask``, never changed) is corrected to. Each save is a
    new version, so an outline is never rewritten in place (the files are write-once, as every
    file of a case is: ``webapp.cases.services.files``) and the export takes the latest.

    ``empty``: "no pneumothorax" (the mask has no pixel set)."""

    # CASCADE: deleting a case deletes its outlines (their files: webapp.cases.services.deletion).
    image = models.ForeignKey(CaseImage, on_delete=models.CASCADE, related_name="corrected_outlines")
    version = models.PositiveIntegerField()
    # cases/<case>/<image>/outline-v<version>.png, 0 or 255, the film's size (services: outlines).
    mask = models.FileField(storage=get_private_storage, max_length=300)
    empty = models.BooleanField()
    # PROTECT: as for reviews and audit rows, a user is deactivated, never deleted.
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                                   related_name="corrected_outlines")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # The version of the model whose result was on the film when the outline was drawn.
    based_on_model_version = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-version"]
        constraints = [
            models.UniqueConstraint(fields=["image", "version"], name="outline_one_per_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="outline_version_positive"),
        ]

    def __str__(self):
        return f"Outline v{self.version} of image {self.image_id}"
