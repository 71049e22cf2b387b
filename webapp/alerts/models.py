"""Alerts that reach a person (issue 22): one row per film and channel, so that a redelivered
job never alerts twice (the unique constraint is the guard, not a check in code), and an
acknowledgement per film, whichever channel brought it."""

from django.conf import settings
from django.db import models


class Channel(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    EMAIL = "email", "E-mail"


class AlertStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # made, not yet delivered (retrying while the receiver is down)
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"  # given up: shown to admins with the reason and a retry


class Alert(models.Model):
    image = models.ForeignKey("cases.CaseImage", on_delete=models.CASCADE, related_name="alerts")
    channel = models.CharField(max_length=16, choices=Channel.choices)
    # Why the film is review first: positive, above the review threshold, or larger than its prior.
    reason = models.CharField(max_length=32)
    status = models.CharField(max_length=16, choices=AlertStatus.choices,
                              default=AlertStatus.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["image", "channel"],
                                               name="one_alert_per_film_and_channel")]

    def __str__(self):
        return f"{self.get_channel_display()} alert for image {self.image_id} ({self.status})"


class Acknowledgement(models.Model):
    """"Seen by Dr X at 10:42": once per film, by the first clinician who acknowledges it."""

    image = models.OneToOneField("cases.CaseImage", on_delete=models.CASCADE,
                                 related_name="acknowledgement")
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                           related_name="acknowledgements")
    at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"image {self.image_id} seen by {self.by} at {self.at:%Y-%m-%d %H:%M}"
