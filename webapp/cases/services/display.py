"""What the case page shows, as plain text: the study panel (DICOM keywords and values as people
read them) and the sentence that gives a result with the threshold it was decided at.

Plain functions of plain data, so that the page, its status JSON and the tests share them."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from webapp.cases.models import ModelVersion

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

# ml.core.reading.DICOM_DISPLAY_FIELDS, in words; a keyword not listed is split at its capitals.
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


# The case header and the worklist row: what tells one study from another at a glance. Patient
# name and id are not among them: stored files are de-identified (deidentify.py), and the
# display fields never held them (ml.core.reading.DICOM_DISPLAY_FIELDS).
HEADER_FIELDS = ("StudyDate", "ViewPosition", "PatientSex", "PatientAge")


def study_header(metadata: Mapping) -> list[tuple[str, str]]:
    return [(dicom_label(key), dicom_value(key, metadata[key])) for key in HEADER_FIELDS
            if (metadata or {}).get(key) not in (None, "")]


# --- results ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Thresholds:
    """A model version's two thresholds on the image probability: the call (operating point)
    and the worklist's high-sensitivity "review first" threshold (None if never chosen)."""
    call: float | None
    review: float | None


def model_thresholds(versions: Iterable[str]) -> dict[str, Thresholds]:
    """The thresholds of each model version the workers registered."""
    def number(value):
        return float(value) if isinstance(value, (int, float)) else None

    return {row.version: Thresholds(number((row.operating_point or {}).get("image_threshold")),
                                    number((row.operating_point or {}).get("review_threshold")))
            for row in ModelVersion.objects.filter(version__in={v for v in versions if v})}


NO_THRESHOLDS = Thresholds(call=None, review=None)


def describe_results(summaries: list[dict]) -> list[dict]:
    """Adds to each job summary (``status.job_summary`` and the keys it has) its model's two
    thresholds, the result sentence and the findings rows: what the case page shows and what
    its status JSON sends, from one place. Changes the dicts in place and returns them."""
    thresholds = model_thresholds(summary["model_version"] for summary in summaries)
    for summary in summaries:
        limits = thresholds.get(summary["model_version"], NO_THRESHOLDS)
        summary["image_threshold"], summary["review_threshold"] = limits.call, limits.review
        summary["result_text"] = result_text(summary, limits.call, limits.review)
        summary["findings_rows"] = findings_rows(summary["findings"])
    return summaries


def _figures(probability: float, threshold: float) -> tuple[str, str]:
    """Both to 2 decimals, or to as many more (up to 4) as it takes for a probability that is
    not the threshold not to look like it."""
    for digits in (2, 3, 4):
        p, t = f"{probability:.{digits}f}", f"{threshold:.{digits}f}"
        if p != t or probability == threshold:
            break
    return p, t


def probability_text(probability: float, threshold: float | None,
                     review_threshold: float | None = None) -> str:
    """``probability 0.63 (suspected at ≥ 0.45, the model's operating point; review first at
    ≥ 0.13)``."""
    if threshold is None:
        return f"probability {probability:.2f} (the threshold of this model is not recorded)"
    p, t = _figures(probability, threshold)
    review = ""
    if review_threshold is not None:
        review = f"; review first at ≥ {_figures(probability, review_threshold)[1]}"
    return f"probability {p} (suspected at ≥ {t}, the model's operating point{review})"


def result_text(summary: Mapping, threshold: float | None,
                review_threshold: float | None = None) -> str:
    """The result of one finished job (``status.job_summary``) in one line; "" before then."""
    if summary.get("status") != "done" or summary.get("probability") is None:
        return ""
    positive = summary.get("positive")
    parts = ["Pneumothorax suspected" if positive else "No pneumothorax detected",
             probability_text(summary["probability"], threshold, review_threshold)]
    if summary.get("review_first") and not positive:
        parts.insert(1, "review first: above the high-sensitivity threshold")
    if positive and summary.get("area_fraction") is not None:
        fraction = summary["area_fraction"]
        area = f"area {100 * fraction:.{2 if fraction < 0.01 else 1}f}% of the image"
        if summary.get("area_cm2") is not None:
            area += f" ({summary['area_cm2']:.1f} cm²)"
        parts.append(area)
    if summary.get("model_version"):
        parts.append(f"model {summary['model_version']}")
    return " · ".join(parts)


# --- findings in words (ml.serving.findings, stored with the job) ----------------------------

SIDE_WORDS = {"right": "Right lung", "left": "Left lung", "both": "Both lungs"}
SIDE_BASIS = {
    "header": "read from the DICOM header (PatientOrientation)",
    "convention": "assuming the radiological convention (patient's right on the image's left): "
                  "the file does not say",
}


def findings_rows(findings: Mapping) -> list[tuple[str, str, str]]:
    """(what, value, how it is measured) for the case page; [] when nothing is outlined. Every
    figure is an estimate from the model's outline on a 2-D film, and the page says so."""
    if not findings or not findings.get("side"):
        return []
    zones = list(findings.get("zones") or [])
    where = ", ".join(zones) if len(zones) < 2 else "several: " + ", ".join(zones)
    area = f"{findings.get('area_percent', 0):.1f}% of the image"
    if findings.get("area_cm2") is not None:
        area += f" ({findings['area_cm2']:.1f} cm²)"
    if findings.get("rim_depth_mm") is not None:
        verdict = "large" if findings.get("large") else "not large"
        depth = f"{findings['rim_depth_mm']:.0f} mm: {verdict} (BTS: large at 2 cm or more)"
        depth_how = ("the widest point of the outlined air (the largest circle that fits inside), "
                     "from the DICOM pixel spacing; the BTS measures at the level of the hilum")
    else:
        depth = f"{findings.get('rim_depth_percent_width') or 0:.1f}% of the image width"
        depth_how = "the widest point of the outlined air; no pixel spacing, so no size in mm and no large/small call"
    return [
        ("Side", SIDE_WORDS.get(findings["side"], findings["side"]),
         SIDE_BASIS.get(findings.get("side_basis"), "")),
        ("Where", where, "by thirds of the image, top to bottom; lateral is the outer half of the "
                         "middle third; not a segmentation of the lung"),
        ("Area", area, "the pixels inside the outline"),
        ("Rim depth", depth, depth_how),
    ]
