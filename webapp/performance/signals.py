"""A saved review (one that replaces a label with "uncertain" too) may tip the drift rule for the version it reviewed:
the check runs once the review's transaction has committed (it reads committed reviews, and a
failure of the check must never undo a clinician's review: robust)."""

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from webapp.reviews.models import Review


@receiver(post_save, sender=Review, dispatch_uid="performance-drift-check")
def check_drift_after_review(sender, instance: Review, **kwargs):
    if not instance.model_version:
        return
    version = instance.model_version

    def check_drift_for_version():  # named: Django logs a robust callback's failure by it
        from webapp.performance.drift import check_drift

        check_drift(version)

    transaction.on_commit(check_drift_for_version, robust=True)
