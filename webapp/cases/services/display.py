"""What the case page shows, as plain text: the study panel (DICOM keywords and values as people
read them) and the sentence that gives a result with the threshold it was decided at.

Plain functions of plain data, so that the page, its status JSON and the tests share them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date

from webapp.cases.models import ModelVersion

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

# ml.reading.DICOM_DISPLAY_FIELDS, in words; a keyword not listed is split at its capitals.
STUDY_LABELS = {
    "Modality": "Modality",
    "StudyDate": "Study date",
    "StudyDescription": "Study",
    "SeriesDescription": "Series",
    "ViewPosition": "View",
    "BodyPartExamined": "Body part",
    "PatientSex": "Sex",
    "PatientAge": "Age",
    "Manufacturer": "Manufacturer",
    "InstitutionName": "Institution",
    "StudyInstanceUID": "Study UID",
    "SeriesInstanceUID": "Series UID",
    "SOPInstanceUID": "Image UID",
}
SEXES = {"M": "Male", "F": "Female", "O": "Other"}
AGE_UNITS = {"D": ("day", "days"), "W": ("week", "weeks"), "M": ("month", "months"),
             "Y": ("year", "years")}
VIEWS = {"PA": "PA (posteroanterior)", "AP": "AP (anteroposterior)"}


def dicom_label(keyword: str) -> str:
    """``StudyDate`` -> ``Study date``; unknown keywords split at their capitals."""
    if keyword in STUDY_LABELS:
        return STUDY_LABELS[keyword]
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z][a-z]*|[a-z]+|\d+", keyword) or [keyword]
    return " ".join([words[0]] + [w if w.isupper() else w.lower() for w in words[1:]])


def dicom_date(value: str) -> str:
    """A DICOM DA value (``YYYYMMDD``; old files ``YYYY.MM.DD``) as ``1 January 1901``; the value
    as it is when it is not a valid date."""
    digits = str(value).strip().replace(".", "")
    if re.fullmatch(r"\d{8}", digits):
        try:
            day = date(int(digits[:4]), int(digits[4:6]), int(digits[6:]))
        except ValueError:
            return str(value)
        return f"{day.day} {MONTHS[day.month - 1]} {day.year}"
    return str(value)


def dicom_age(value: str) -> str:
    """A DICOM AS value (``045Y``, ``006M``) as ``45 years``; a bare number is taken as years."""
    match = re.fullmatch(r"0*(\d+)\s*([DWMY]?)", str(value).strip().upper())
    if not match:
        return str(value)
    number, unit = int(match.group(1)), match.group(2) or "Y"
    one, many = AGE_UNITS[unit]
    return f"{number} {one if number == 1 else many}"


def dicom_value(keyword: str, value) -> str:
    text = str(value)
    if keyword.endswith("Date"):
        return dicom_date(text)
    if keyword == "PatientSex":
        return SEXES.get(text.strip().upper(), text)
    if keyword == "PatientAge":
        return dicom_age(text)
    if keyword == "ViewPosition":
        return VIEWS.get(text.strip().upper(), text)
    return text


def study_fields(metadata: Mapping) -> list[tuple[str, str]]:
    """The study panel's rows, ``(label, value)``, in the order of the metadata."""
    return [(dicom_label(key), dicom_value(key, value)) for key, value in (metadata or {}).items()
            if value not in (None, "")]


# --- results ---------------------------------------------------------------------------------

def image_thresholds(versions: Iterable[str]) -> dict[str, float]:
    """The image threshold (operating point) of each model version the workers registered."""
    thresholds = {}
    for row in ModelVersion.objects.filter(version__in={v for v in versions if v}):
        value = (row.operating_point or {}).get("image_threshold")
        if isinstance(value, (int, float)):
            thresholds[row.version] = float(value)
    return thresholds


def _figures(probability: float, threshold: float) -> tuple[str, str]:
    """Both to 2 decimals, or to as many more (up to 4) as it takes for a probability that is
    not the threshold not to look like it."""
    for digits in (2, 3, 4):
        p, t = f"{probability:.{digits}f}", f"{threshold:.{digits}f}"
        if p != t or probability == threshold:
            break
    return p, t


def probability_text(probability: float, threshold: float | None) -> str:
    """``probability 0.63 (suspected at ≥ 0.45, the model's operating point)``."""
    if threshold is None:
        return f"probability {probability:.2f} (the threshold of this model is not recorded)"
    p, t = _figures(probability, threshold)
    return f"probability {p} (suspected at ≥ {t}, the model's operating point)"


def result_text(summary: Mapping, threshold: float | None) -> str:
    """The result of one finished job (``status.job_summary``) in one line; "" before then."""
    if summary.get("status") != "done" or summary.get("probability") is None:
        return ""
    positive = summary.get("positive")
    parts = ["Pneumothorax suspected" if positive else "No pneumothorax detected",
             probability_text(summary["probability"], threshold)]
    if positive and summary.get("area_fraction") is not None:
        fraction = summary["area_fraction"]
        area = f"area {100 * fraction:.{2 if fraction < 0.01 else 1}f}% of the image"
        if summary.get("area_cm2") is not None:
            area += f" ({summary['area_cm2']:.1f} cm²)"
        parts.append(area)
    if summary.get("model_version"):
        parts.append(f"model {summary['model_version']}")
    return " · ".join(parts)
