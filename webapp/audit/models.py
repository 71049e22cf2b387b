"""The audit log: append-only. Rows are written by webapp.audit.services.record inside the
transaction of the action they describe, and never changed afterwards: the model refuses
updates and deletes, and on PostgreSQL a trigger refuses them too (migration 0002)."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Action(models.TextChoices):
    LOGIN = "login", "Login"
    LOGIN_FAILED = "login_failed", "Failed login"
    LOGIN_LOCKED = "login_locked", "Login refused (too many failures)"
    LOGOUT = "logout", "Logout"
    UPLOAD = "upload", "Upload"
    VIEW_CASE = "view_case", "Case viewed"
    VIEW_IMAGE = "view_image", "Image viewed"
    DOWNLOAD = "download", "Download"
    DELETE = "delete", "Deletion"
    REVIEW = "review", "Result reviewed"
    EXPORT = "export", "Export"
    DICOM_REFUSED = "dicom_refused", "DICOM association or instance refused"
    RESULTS_SENT = "results_sent", "Results sent to a PACS"
    DELIVERY_FAILED = "delivery_failed", "Results could not be sent to a PACS"
    DELIVERY_RETRY = "delivery_retry", "Delivery to a PACS retried"
    TOKEN_CREATED = "token_created", "API token created"
    TOKEN_REVOKED = "token_revoked", "API token revoked"
    # Issue 24: two-factor sign-in, backup and restore, retention.
    TWO_FACTOR_ENABLED = "two_factor_enabled", "Two-factor sign-in set up"
    TWO_FACTOR_DISABLED = "two_factor_disabled", "Two-factor sign-in removed"
    TWO_FACTOR_FAILED = "two_factor_failed", "Wrong two-factor code"
    RECOVERY_CODES_CREATED = "recovery_codes_created", "Recovery codes made"
    RECOVERY_CODE_USED = "recovery_code_used", "Recovery code used"
    BACKUP = "backup", "Backup taken"
    RESTORE = "restore", "Backup restored"
    RETENTION_DELETE = "retention_delete", "Deleted by the retention policy"
    # Issue 22: alerts that reach a person.
    ALERT_SENT = "alert_sent", "Alert delivered"
    ALERT_FAILED = "alert_failed", "Alert could not be delivered"
    ALERT_RETRY = "alert_retry", "Alert delivery retried"
    ALERT_ACKNOWLEDGED = "alert_acknowledged", "Alert acknowledged"
    # Issue 23: the site learns.
    OUTLINE_CORRECTED = "outline_corrected", "Outline corrected"
    MODEL_REGISTERED = "model_registered", "Model registered"
    MODEL_PROMOTED = "model_promoted", "Model promoted"
    MODEL_ROLLED_BACK = "model_rolled_back", "Model rolled back"
    DRIFT_ALARM = "drift_alarm", "Drift alarm"


class AppendOnlyError(RuntimeError):
    pass


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit events are never edited.")

    def delete(self):
        raise AppendOnlyError("Audit events are never deleted.")


class AuditEvent(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    # PROTECT: a user with an audit trail is deactivated, never deleted (the trail must stay).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.PROTECT, related_name="audit_events")
    username = models.CharField(max_length=150, blank=True)  # as it was at the time
    action = models.CharField(max_length=32, choices=Action.choices, db_index=True)
    # The object acted on, by type and id (not a foreign key: deleting a case keeps its trail).
    object_type = models.CharField(max_length=64, blank=True)
    object_id = models.CharField(max_length=64, blank=True, db_index=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "-at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.username or '-'} {self.action} {self.object_type} {self.object_id}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit events are never edited.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit events are never deleted.")
