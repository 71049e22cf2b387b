"""The API's JSON shapes. Payloads are built as plain dicts by webapp.api.payloads (from the
pipeline's status services) and passed through these serializers, so the OpenAPI schema and
what is served are the same thing."""

from rest_framework import serializers

from webapp.cases.models import JobStatus
from webapp.cases.services import worklist

STATUS_CHOICES = [s.value for s in JobStatus]


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What went wrong, for a person.")
    errors = serializers.ListField(child=serializers.CharField(), required=False,
                                   help_text="One reason per problem (e.g. per refused file).")
    case = serializers.UUIDField(required=False, help_text="The existing case, on a conflict.")


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
    model_version = serializers.CharField(allow_blank=True)
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


class CaseSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    url = serializers.URLField()
    status = serializers.ChoiceField(choices=STATUS_CHOICES)
    created_at = serializers.DateTimeField()
    owner = serializers.CharField()
    client_reference = serializers.CharField(allow_blank=True)
    batch = serializers.UUIDField(allow_null=True)
    positive = serializers.BooleanField(allow_null=True, help_text="Any finished image positive.")
    max_probability = serializers.FloatField(allow_null=True)
    images = ImageSerializer(many=True)


class CaseCreateSerializer(serializers.Serializer):
    """Documentation of the multipart request (files are checked by the upload service)."""

    images = serializers.ListField(child=serializers.FileField(), min_length=1,
                                   help_text="One or more X-rays (DICOM, PNG or JPEG), one case.")
    client_reference = serializers.CharField(required=False, allow_blank=True, max_length=200,
                                             help_text="Your own reference; unique among your cases.")
    batch = serializers.UUIDField(required=False, help_text="Add the case to this batch of yours.")


class CaseFilterSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=STATUS_CHOICES, required=False)
    positive = serializers.BooleanField(required=False, allow_null=True, default=None)
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    batch = serializers.UUIDField(required=False)
    client_reference = serializers.CharField(required=False, max_length=200)
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
        return _printable(value)


def _printable(value: str) -> str:
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise serializers.ValidationError("Control characters are not allowed.")
    return value.strip()


class _Page(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)


class CasePageSerializer(_Page):
    results = CaseSerializer(many=True)


class BatchPageSerializer(_Page):
    results = BatchSerializer(many=True)
