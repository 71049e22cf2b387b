from django import forms
from django.conf import settings

from webapp.cases.services import patients
from webapp.cases.services.submission import REFERENCE_MAX_LENGTH
from webapp.cases.services.teams import TeamRefused, submission_team, user_teams
from webapp.cases.services.text import validate_name_text


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


class UnrepeatedTextInput(forms.TextInput):
    """A text box that a refused form shows empty again: a patient's identifier is never sent
    back in a page (nor kept by the browser's autofill)."""

    def __init__(self, attrs=None):
        super().__init__({"autocomplete": "off", **(attrs or {})})

    def format_value(self, value):
        return None


def validate_patient_reference(value: str) -> None:
    problem = patients.reference_problem(value)
    if problem is not None:
        raise forms.ValidationError(f"Patient reference: {problem}", code="invalid")


class UploadForm(forms.Form):
    """``user``: the uploader, whose teams ``team`` is chosen among (a select when they have
    several; hidden otherwise, their one team or none applying). The field takes a team's id or
    name, as the API's does, and cleans to a Team (None: the default, services.teams)."""

    images = MultipleFileField(label="Chest X-rays (DICOM, PNG or JPEG)")
    # Checked as sent (strip=False), then stripped in clean_client_reference: the API's order.
    client_reference = forms.CharField(label="Your reference (optional)", required=False,
                                       max_length=REFERENCE_MAX_LENGTH, strip=False,
                                       validators=[validate_name_text])
    # No max_length here: validate_patient_reference says why a reference is refused, once.
    patient_reference = forms.CharField(
        label="Patient (hospital number; optional)", required=False, strip=False,
        widget=UnrepeatedTextInput, validators=[validate_patient_reference],
        help_text="Links this case to the patient's other films. For DICOM, the file's own Patient "
                  "ID is used unless you type one here. Stored only as a keyed hash.")
    team = forms.CharField(label="Team (its members see the case)", required=False, max_length=100,
                           widget=forms.HiddenInput)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        teams = list(user_teams(user)) if user is not None else []
        if len(teams) > 1:
            self.fields["team"].widget = forms.Select(choices=[(t.pk, t.name) for t in teams])
            self.fields["team"].initial = teams[0].pk  # the default: the first by name

    def clean_client_reference(self):
        return self.cleaned_data["client_reference"].strip()

    def clean_patient_reference(self):
        return self.cleaned_data["patient_reference"].strip()

    def clean_team(self):
        choice = self.cleaned_data["team"]
        if self.user is None:  # no uploader to check against: submit_case decides
            return choice or None
        try:
            return submission_team(self.user, choice)
        except TeamRefused as exc:
            raise forms.ValidationError(exc.messages) from exc


class ModelUploadForm(forms.Form):
    """A model file for the registry (webapp.cases.registry_views.upload); its size and header
    are checked by services.registry.accept_upload, its weights by a worker."""

    file = forms.FileField(label="Model file (.safetensors, written by ml.train)")

    def clean_file(self):
        uploaded = self.cleaned_data["file"]
        if not uploaded.name.lower().endswith(".safetensors"):
            raise forms.ValidationError("Upload a .safetensors model file.")
        if uploaded.size > settings.MODEL_UPLOAD_MAX_MB * 1024 * 1024:
            raise forms.ValidationError(f"The file is over the {settings.MODEL_UPLOAD_MAX_MB} MB limit.")
        return uploaded
