"""The drift alarm's record: one row per model version, made the first time the rule fires for
it (webapp.performance.drift). The unique version is the guard that the audit row and the alert
are written once, however many reviews are saved after; ``active`` follows the rule at each
check, and the admins' banner shows the active ones."""

from django.db import models


class DriftAlarm(models.Model):
    model_version = models.CharField(max_length=100, unique=True)
    fired_at = models.DateTimeField(auto_now_add=True)
    # Whether the rule still held at the last check (a review saved on this version's result).
    active = models.BooleanField(default=True, db_index=True)
    checked_at = models.DateTimeField(auto_now=True)
    # The figures when it fired: proportions and the rule, no film or patient named.
    detail = models.JSONField(default=dict)
    # {channel: "delivered" | "failed: reason"}, written by the delivery task (tasks.py).
    deliveries = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-fired_at"]

    def __str__(self):
        return f"Drift alarm for {self.model_version}"
