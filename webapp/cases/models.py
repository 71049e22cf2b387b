"""A case holds images; each image has one inference job with its state and results.

Files (original, preview, mask, overlay) live in private storage under
``cases/<case>/<image>/``, named by id, never by the uploaded file name.
"""

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from .storage import get_private_storage


class Case(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="cases")
    # The uploader's team at submission (services.submission): its members see the case. PROTECT,
    # not SET_NULL: deleting a team would silently take its open cases off every teammate's
    # worklist, unread; an administrator moves the cases to another team first (or removes the
    # members, which ends their access without losing the cases' place).
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="cases")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # Set by API clients to recognise their own submissions (issue 4); unique per owner.
    client_reference = models.CharField(max_length=200, blank=True, default="")
    # Display-safe DICOM study fields of the first DICOM image (ml.core.reading.DICOM_DISPLAY_FIELDS).
    study_metadata = models.JSONField(default=dict, blank=True)
    # The patient, pseudonymous (issue 22): HMAC-SHA256 of the identifier with PATIENT_KEY_SECRET
    # (webapp.cases.services.patients), never the identifier itself; "" where none was given.
    patient_key = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["owner", "-created_at"])]
        constraints = [
            models.UniqueConstraint(fields=["owner", "client_reference"],
                                    condition=~models.Q(client_reference=""),
                                    name="case_unique_client_reference_per_owner"),
        ]

    def __str__(self):
        return f"Case {self.id}"


class CaseImage(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="images")
    position = models.PositiveSmallIntegerField(default=0)
    original = models.FileField(storage=get_private_storage, max_length=300)
    preview = models.FileField(storage=get_private_storage, max_length=300, blank=True)
    original_name = models.CharField(max_length=255)  # sanitised, for display only
    source_format = models.CharField(max_length=8)  # dicom | png | jpeg, detected from content
    content_type = models.CharField(max_length=64)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64, db_index=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    pixel_spacing_mm = models.JSONField(null=True, blank=True)  # [row, column] or null
    metadata = models.JSONField(default=dict, blank=True)  # display-safe DICOM fields
    # The header's StudyDate (read before de-identification), to order a patient's films; null
    # where the file has none (PNG/JPEG): then the upload time orders them.
    study_date = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["position", "created_at"]

    def __str__(self):
        return f"{self.original_name} ({self.source_format})"


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


TERMINAL_STATUSES = (JobStatus.DONE, JobStatus.FAILED)


class Job(models.Model):
    """One inference job per image. State changes only through webapp.cases.services.jobs,
    each guarded by the state it expects, so a job delivered twice is harmless."""

    image = models.OneToOneField(CaseImage, on_delete=models.CASCADE, related_name="job")
    status = models.CharField(max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED,
                              db_index=True)
    error = models.TextField(blank=True)  # the reason, shown to the user, when failed
    attempts = models.PositiveSmallIntegerField(default=0)
    # Identifies the run that holds the job; only that run may write its result.
    run_token = models.CharField(max_length=64, blank=True)
    worker = models.CharField(max_length=200, blank=True)
    queued_at = models.DateTimeField(auto_now_add=True, db_index=True)
    # When the job id was last sent to the queue (on commit, then by the reconciler): a job that
    # stays queued long after this was lost with the broker and is sent again.
    dispatched_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    probability = models.FloatField(null=True, blank=True)
    positive = models.BooleanField(null=True, blank=True)
    area_fraction = models.FloatField(null=True, blank=True)
    area_cm2 = models.FloatField(null=True, blank=True)
    model_version = models.CharField(max_length=100, blank=True)
    # How the worker ran the network (ml.serving.backends): torch, torch-bf16 or onnx; "" before done.
    backend = models.CharField(max_length=32, blank=True)
    # On top of the worklist: called positive, or above the model's high-sensitivity threshold.
    review_first = models.BooleanField(null=True, blank=True, db_index=True)
    # ml.serving.findings.Findings.as_dict(): side, zones, area, rim depth, large; {} before done.
    findings = models.JSONField(default=dict, blank=True)
    # The comparison with the patient's prior finished film (webapp.cases.services.comparison);
    # null where there is no prior.
    comparison = models.JSONField(null=True, blank=True)
    timings_ms = models.JSONField(default=dict, blank=True)
    mask = models.FileField(storage=get_private_storage, max_length=300, blank=True)
    overlay = models.FileField(storage=get_private_storage, max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "queued_at"])]

    def __str__(self):
        return f"Job {self.pk} ({self.status})"


class ModelVersion(models.Model):
    """A model that a worker has loaded, with the figures ml.evaluate measured for it (stored in
    the model file). Workers register it at start-up; the web, which never loads the model,
    shows clinicians how often the model that produced a result misses or over-calls."""

    version = models.CharField(max_length=100, unique=True)
    encoder = models.CharField(max_length=64)
    image_size = models.PositiveIntegerField()
    operating_point = models.JSONField(default=dict)
    # ml.evaluate's figures on the held-out test images; empty if the model was never evaluated
    test_figures = models.JSONField(default=dict, blank=True)
    first_seen_at = models.DateTimeField(auto_now_add=True)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-last_seen_at"]

    def __str__(self):
        return self.version


class RegisteredModel(models.Model):
    """A model file in the registry (webapp.cases.services.registry): a candidate, the one active
    model the workers serve, or a retired one. Its file lies in MODEL_REGISTRY_DIR (or, for the
    model a fresh installation starts with, at PNEUMOTHORAX_MODEL), where every worker reads it."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate", "Candidate"
        ACTIVE = "active", "Active"
        RETIRED = "retired", "Retired"

    class Validation(models.TextChoices):
        # An admin upload waits for a worker (the web has no torch) to load it.
        PENDING = "pending", "Awaiting validation"
        VALID = "valid", "Valid"
        INVALID = "invalid", "Invalid"

    version = models.CharField(max_length=100, unique=True)
    # Absolute, or relative to MODEL_REGISTRY_DIR (services.registry.file_of).
    file = models.CharField(max_length=500)
    sha256 = models.CharField(max_length=64, blank=True)
    size_bytes = models.PositiveBigIntegerField(default=0)
    encoder = models.CharField(max_length=64, blank=True)
    image_size = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CANDIDATE)
    validation = models.CharField(max_length=12, choices=Validation.choices, default=Validation.PENDING)
    validation_error = models.TextField(blank=True)
    # ml.evaluate's report.json for this version, as given at registration ({} if none)
    report = models.JSONField(default=dict, blank=True)
    # The figures stored in the file itself (ml.core.model_card.held_out_figures)
    test_figures = models.JSONField(default=dict, blank=True)
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True,
                                    blank=True, related_name="+")
    registered_at = models.DateTimeField(default=timezone.now)
    promoted_at = models.DateTimeField(null=True, blank=True)
    # The model that was active when this one was promoted: what a rollback returns to.
    previous = models.ForeignKey("self", on_delete=models.SET_NULL, null=True, blank=True,
                                 related_name="+")
    # A worker that could not load this model (it kept serving the old one) says so here.
    load_error = models.TextField(blank=True)
    load_error_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-registered_at"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="active"),
                                    name="one_active_model"),
            # Only a model that loaded may be served.
            models.CheckConstraint(condition=~models.Q(status="active") | models.Q(validation="valid"),
                                   name="active_model_is_valid"),
        ]

    def __str__(self):
        return f"{self.version} ({self.status})"


class DeletedCase(models.Model):
    """A tombstone: what the system deleted of a case, when and why (the retention policy,
    webapp.cases.services.retention). The case, its images, jobs, reviews and files are gone; the
    audit rows stay and name the case by id, and this row says what they referred to. It holds
    no patient identifier: no file or study name, no DICOM field, no client reference (an API
    client's reference may be an accession number)."""

    case_id = models.UUIDField(unique=True)
    # SET_NULL, not PROTECT: a tombstone must not keep a retired team alive; its name stays.
    team = models.ForeignKey("accounts.Team", on_delete=models.SET_NULL, null=True, blank=True,
                             related_name="+")
    team_name = models.CharField(max_length=100, blank=True)
    case_created_at = models.DateTimeField()
    first_uploaded_at = models.DateTimeField(null=True, blank=True)
    last_uploaded_at = models.DateTimeField(null=True, blank=True)
    images = models.PositiveIntegerField()
    # What went: {"originals": n, "previews": n, "masks": n, "overlays": n, "dicom_results": n,
    # "other_files": n, "jobs": n, "reviews": n, "pacs_deliveries": n}
    deleted = models.JSONField(default=dict)
    deleted_at = models.DateTimeField(default=timezone.now, db_index=True)
    reason = models.CharField(max_length=200)

    class Meta:
        ordering = ["-deleted_at"]
        verbose_name = "deleted case"

    def __str__(self):
        return f"Deleted case {self.case_id}"
