"""The API's JSON shapes, and the validation of what clients send. Payloads are built as plain
dicts by webapp.api.payloads (from the pipeline's status services) and passed through these
serializers, so the OpenAPI schema and what is served are the same thing; requests are validated
by the serializer that the schema documents them with."""

from datetime import datetime

from django.utils import timezone
from rest_framework import serializers

from webapp.api import batches
from webapp.api.models import Batch
from webapp.cases.models import JobStatus
from webapp.cases.services import comparison, patients, teams, text, worklist
from webapp.cases.services.submission import REFERENCE_MAX_LENGTH

STATUS_CHOICES = [s.value for s in JobStatus]


class FindingsSerializer(serializers.Serializer):
    """ml.serving.findings.Findings: estimates from the outline, explained on the case page."""
    side = serializers.CharField(allow_null=True, required=False)
    side_basis = serializers.ChoiceField(choices=["header", "convention"], required=False,
                                         help_text="PatientOrientation, or the radiological convention assumed.")
    zones = serializers.ListField(child=serializers.CharField(), required=False)
    area_percent = serializers.FloatField(required=False)
    area_cm2 = serializers.FloatField(allow_null=True, required=False)
    rim_depth_mm = serializers.FloatField(allow_null=True, required=False)
    rim_depth_percent_width = serializers.FloatField(allow_null=True, required=False)
    large = serializers.BooleanField(allow_null=True, required=False)


class ComparisonSerializer(serializers.Serializer):
    """Job.comparison (webapp.cases.services.comparison): this film against the patient's prior
    finished film, among the cases the uploader may see."""
    prior_image_id = serializers.UUIDField(help_text="The prior film (an image of another case).")
    prior_case_id = serializers.UUIDField()
    prior_date = serializers.DateField(help_text="The prior's study date, else its upload date.")
    trend = serializers.ChoiceField(choices=list(comparison.TRENDS), help_text=(
        "new: prior negative, now positive; resolved: the reverse; both positive: larger or "
        "smaller when the outlined area changed beyond the measured noise (COMPARISON_AREA_NOISE "
        "and COMPARISON_AREA_NOISE_RELATIVE), else unchanged; both negative: unchanged."))
    area_fraction = serializers.FloatField(help_text="This film's, as area_fraction.")
    prior_area_fraction = serializers.FloatField()
    area_fraction_change = serializers.FloatField(help_text="This film's minus the prior's.")
    rim_depth_mm = serializers.FloatField(allow_null=True, help_text=(
        "0 with nothing outlined; null unless both films have a pixel spacing."))
    prior_rim_depth_mm = serializers.FloatField(allow_null=True)
    rim_depth_change_mm = serializers.FloatField(allow_null=True, help_text=(
        "This film's minus the prior's; null unless both films have a pixel spacing."))


class ImageSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    name = serializers.CharField(help_text="The uploaded file's name (sanitised).")
    position = serializers.IntegerField()
    source_format = serializers.ChoiceField(choices=["dicom", "png", "jpeg"])
    width = serializers.IntegerField()
    height = serializers.IntegerField()
    sha256 = serializers.CharField(help_text="SHA-256 of the uploaded bytes.")
    status = serializers.ChoiceField(choices=STATUS_CHOICES)
    error = serializers.CharField(allow_blank=True, help_text="The reason, when failed; else empty.")
    probability = serializers.FloatField(allow_null=True)
    positive = serializers.BooleanField(allow_null=True)
    area_fraction = serializers.FloatField(allow_null=True)
    area_cm2 = serializers.FloatField(allow_null=True, help_text="Null without pixel spacing.")
    side = serializers.ChoiceField(choices=["right", "left", "both"], allow_null=True,
                                   help_text="The patient's side of the outlined area; null when none.")
    zones = serializers.ListField(child=serializers.ChoiceField(choices=["apical", "lateral", "basal"]),
                                  help_text="Where the outlined area lies, by thirds of the image.")
    rim_depth_mm = serializers.FloatField(allow_null=True,
                                          help_text="Widest point of the outlined air, mm; null without spacing.")
    large = serializers.BooleanField(allow_null=True,
                                     help_text="Rim depth >= 2 cm (BTS 2010); null without spacing or finding.")
    review_first = serializers.BooleanField(allow_null=True, help_text=(
        "Positive, or above the model's high-sensitivity threshold: read this first. Null until "
        "the image is done (queued, running or failed: not triaged yet)."))
    findings = FindingsSerializer()
    comparison = ComparisonSerializer(allow_null=True, help_text=(
        "With the patient's prior finished film; null where there is none (no patient linked, "
        "no earlier film) or until done."))
    model_version = serializers.CharField(allow_blank=True)
    backend = serializers.CharField(allow_blank=True, help_text=(
        "How the worker ran the network: torch (eager fp32), torch-bf16 or onnx; empty until done."))
    timings_ms = serializers.DictField(child=serializers.FloatField())
    queued_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)
    original_url = serializers.URLField()
    preview_url = serializers.URLField()
    mask_url = serializers.URLField(allow_null=True, help_text="PNG, the input's size; once done.")
    overlay_url = serializers.URLField(allow_null=True, help_text="PNG, the input's size; once done.")
    dicom_seg_url = serializers.URLField(allow_null=True,
                                         help_text="DICOM Segmentation; DICOM inputs, once done.")
    dicom_sc_url = serializers.URLField(allow_null=True,
                                        help_text="DICOM Secondary Capture of the overlay; DICOM inputs, once done.")
    dicom_sr_url = serializers.URLField(allow_null=True,
                                        help_text="DICOM Structured Report of the result; DICOM inputs, once done.")


class CaseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    status = serializers.ChoiceField(choices=STATUS_CHOICES)
    created_at = serializers.DateTimeField()
    owner = serializers.CharField()
    client_reference = serializers.CharField(allow_blank=True)
    batch = serializers.UUIDField(allow_null=True)
    team = serializers.CharField(allow_null=True, help_text="The uploader's team, whose members see "
                                                            "the case; null: the uploader's alone.")
    positive = serializers.BooleanField(allow_null=True, help_text="Any finished image positive.")
    max_probability = serializers.FloatField(allow_null=True)
    images = ImageSerializer(many=True)


class PrintableCharField(serializers.CharField):
    """Text without control or bidirectional-text control characters (the upload page's check,
    ``services.text``), stripped once valid. They are checked before the length and before
    DRF's own null-character check, so that one message says what is wrong."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        text.validate_name_text(data)  # a Django ValidationError: the serializer reports it
        return data

    def run_validation(self, data=serializers.empty):
        value = super().run_validation(data)
        return value.strip() if isinstance(value, str) else value


REFERENCE_PROBLEM = f"at most {REFERENCE_MAX_LENGTH} characters, no control characters."
NO_IMAGES = "choose at least one X-ray file (multipart field 'images')."
PATIENT_REFERENCE_PROBLEM = (f"at most {patients.REFERENCE_MAX_LENGTH} characters, no control "
                             "characters.")


class CaseCreateSerializer(serializers.Serializer):
    """Documentation of the multipart request (files are checked by the upload service)."""

    # (The docstring is the schema's description of the request.) The view validates the
    # request with this serializer; the files' content is checked by the submission service,
    # which reads each one. Context: ``user``, whose batch ``batch`` and team ``team`` must be.

    # allow_empty_file: an empty file is refused by the upload service, with the file's name.
    images = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True), min_length=1,
        error_messages={"required": NO_IMAGES, "min_length": NO_IMAGES, "empty": NO_IMAGES,
                        "not_a_list": NO_IMAGES},
        help_text="One or more X-rays (DICOM, PNG or JPEG), one case.")
    client_reference = PrintableCharField(
        required=False, allow_blank=True, max_length=REFERENCE_MAX_LENGTH, trim_whitespace=False,
        error_messages={"invalid": REFERENCE_PROBLEM, "max_length": REFERENCE_PROBLEM},
        help_text="Your own reference; unique among your cases.")
    # Write-only: stored as a keyed hash (Case.patient_key), never answered, never logged.
    patient_reference = PrintableCharField(
        required=False, allow_blank=True, max_length=patients.REFERENCE_MAX_LENGTH,
        trim_whitespace=False, write_only=True,
        error_messages={"invalid": PATIENT_REFERENCE_PROBLEM,
                        "max_length": PATIENT_REFERENCE_PROBLEM},
        help_text="The patient (the hospital number, as in the PACS's Patient ID): links this "
                  "case to the patient's other films. Overrides a DICOM's own Patient ID; "
                  "needed for PNG/JPEG to be linked. Stored only as a keyed hash; never returned.")
    batch = serializers.UUIDField(required=False, error_messages={"invalid": "no such batch of yours."},
                                  help_text="Add the case to this batch of yours.")
    team = serializers.CharField(required=False, max_length=100,
                                 help_text="One of your teams (id or name), whose members will see "
                                           "the case; default: your first team by name.")

    def validate_team(self, value):
        try:
            return teams.submission_team(self.context["user"], value)
        except teams.TeamRefused as exc:
            raise serializers.ValidationError(exc.messages) from exc

    def validate_batch(self, value):
        batch = batches.owned_batch(self.context["user"], value)
        if batch is None:
            raise serializers.ValidationError("no such batch of yours.")
        return batch

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            # Problems are listed as the API always has (reference, batch, files), while the
            # fields keep the schema's order (files first).
            order = {"client_reference": 0, "patient_reference": 1, "batch": 2, "team": 3,
                     "images": 4}
            raise serializers.ValidationError(
                dict(sorted(exc.detail.items(), key=lambda item: order.get(item[0], 4)))) from exc


class BoundDateTimeField(serializers.DateTimeField):
    """A date bound of a filter. DRF converts and checks a datetime in UTC, which overflows
    (an OverflowError, a 500) on year 1's first or year 9999's last day in a zone off UTC: such
    a bound is kept as given, and ``worklist.filter_cases`` clamps it to the calendar's end (the
    same cases: no bound), as the worklist page does with its dates."""

    def enforce_timezone(self, value):
        try:
            return super().enforce_timezone(value)
        except (OverflowError, serializers.ValidationError):
            if value.year not in (datetime.min.year, datetime.max.year):
                raise
            zone = getattr(self, "timezone", None) or self.default_timezone()
            return value if zone is None or timezone.is_aware(value) else \
                timezone.make_aware(value, zone)


class CaseFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUS_CHOICES, required=False)
    positive = serializers.BooleanField(required=False, allow_null=True, default=None)
    created_after = BoundDateTimeField(required=False)
    created_before = BoundDateTimeField(required=False)
    batch = serializers.UUIDField(required=False)
    client_reference = serializers.CharField(required=False, max_length=200)
    q = serializers.CharField(required=False, max_length=200,
                              help_text="Search: part of the reference or of an image's file name.")
    review_first = serializers.BooleanField(required=False, default=False)
    order = serializers.ChoiceField(choices=list(worklist.ORDERINGS), default=worklist.NEWEST)


class ProgressSerializer(serializers.Serializer):
    cases = serializers.IntegerField(help_text="Cases submitted so far.")
    images = serializers.IntegerField()
    queued = serializers.IntegerField()
    running = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    positive = serializers.IntegerField(help_text="Finished images found positive.")
    fraction_finished = serializers.FloatField(help_text="(done + failed) / images; 0 when empty.")
    complete = serializers.BooleanField(
        help_text="Every expected case submitted and every image finished.")


class BatchSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    cases_url = serializers.URLField()
    label = serializers.CharField(allow_blank=True)
    expected_cases = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    owner = serializers.CharField()
    progress = ProgressSerializer()


class BatchCreateSerializer(serializers.Serializer):
    label = serializers.CharField(required=False, allow_blank=True, max_length=200)
    expected_cases = serializers.IntegerField(required=False, allow_null=True, min_value=0,
                                              max_value=1_000_000)

    def validate_label(self, value):
        text.validate_name_text(value)
        return value.strip()

    def create(self, validated_data):
        return Batch.objects.create(**validated_data)  # owner= from save()


class _Page(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class CasePageSerializer(_Page):
    results = CaseSerializer(many=True)


class BatchPageSerializer(_Page):
    results = BatchSerializer(many=True)
