"""What the REST API keeps beyond the case pipeline's own models: batches (a group of cases
submitted together, with their progress) and idempotency keys (a retried POST creates nothing
twice)."""

import uuid

from django.conf import settings
from django.db import models

from webapp.cases.models import Case


class Batch(models.Model):
    """Cases submitted together: each file is POSTed on its own (small, retryable, idempotent
    requests) with ``batch=<id>``; the batch reports the progress of them all."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="api_batches")
    label = models.CharField(max_length=200, blank=True)
    # How many cases the client means to submit (optional): progress is complete only then.
    expected_cases = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "batches"

    def __str__(self):
        return f"Batch {self.id}"


class BatchCase(models.Model):
    """A case belongs to at most one batch; deleting the case removes it from the batch."""

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="links")
    case = models.OneToOneField(Case, on_delete=models.CASCADE, related_name="api_batch_link")
    added_at = models.DateTimeField(auto_now_add=True)


class IdempotencyKey(models.Model):
    """An ``Idempotency-Key`` header seen from a user on a POST, with what that POST created.

    A retry with the same key and the same request gets the same object back (and creates
    nothing); the same key with a different request is refused. Keys are per user."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              related_name="api_idempotency_keys")
    key = models.CharField(max_length=200)
    scope = models.CharField(max_length=16)  # "case" | "batch"
    request_hash = models.CharField(max_length=64)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    batch = models.ForeignKey(Batch, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["owner", "scope", "key"],
                                               name="api_idempotency_key_unique")]
