from django import forms
from django.conf import settings


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": ".dcm,.dicom,.png,.jpg,.jpeg,application/dicom,image/png,image/jpeg"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, (list, tuple)) else [data]
        files = [f for f in files if f]
        if not files:
            raise forms.ValidationError("Choose at least one X-ray file.")
        if len(files) > settings.MAX_UPLOAD_FILES:
            raise forms.ValidationError(f"At most {settings.MAX_UPLOAD_FILES} files per case.")
        return files  # content is checked by services.uploads, which reads each file


class UploadForm(forms.Form):
    images = MultipleFileField(label="Chest X-rays (DICOM, PNG or JPEG)")
    client_reference = forms.CharField(label="Your reference (optional)", max_length=200, required=False)
