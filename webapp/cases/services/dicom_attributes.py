"""What a DICOM result (SEG, Secondary Capture; later SR / KOS) carries over from its stored
source so that a viewer can place it next to the X-ray: body part, laterality, view position,
patient orientation, the de-identification record and pixel spacing.

Everything is read from the *stored* (de-identified) file only, never from the case record
(``CaseImage.metadata``, ``Case.study_metadata``): what de-identification took out of the file
cannot come back through a result. Each result's conformance is checked with dicom3tools'
``dciodvfy`` (tests/api/test_dicom_conformance.py); the warnings it still gives are explained
next to the code that causes them, here and in ``results.py``."""

from __future__ import annotations

import pydicom
from pydicom.valuerep import DSfloat

# The product reads frontal chest radiographs only, and the result is a pneumothorax: a finding
# of the chest whatever the source's header says or lacks.
BODY_PART = "CHEST"
LATERALITIES = ("R", "L", "U", "B")  # Image Laterality (0020,0062), enumerated values

# Patient module attributes that say how the stored file was de-identified: the result is as
# de-identified as its source and says so (highdicom copies them into a SEG, not into an SC).
DEIDENTIFICATION = ("PatientIdentityRemoved", "DeidentificationMethod",
                    "DeidentificationMethodCodeSequence")

# Type 2 attributes of the Patient and General Study modules: every result has them, empty
# (unknown) where the source has none, as after de-identification.
PATIENT_STUDY_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                       "StudyDate", "StudyTime", "ReferringPhysicianName", "StudyID",
                       "AccessionNumber")


def with_identity_elements(source: pydicom.Dataset) -> pydicom.Dataset:
    """``source`` (read for this result only) with the Type 2 patient and study attributes it
    lacks added empty: highdicom's SEG needs them (a source without Patient's Name made it
    fail), and an empty value adds nothing that the stored file does not have."""
    for keyword in PATIENT_STUDY_TYPE2:
        if keyword not in source:
            setattr(source, keyword, "")
    return source


def _text(source: pydicom.Dataset, keyword: str) -> str:
    value = source.get(keyword)
    return str(value).strip().upper() if value not in (None, "") else ""


def patient_orientation(source: pydicom.Dataset) -> list[str] | str:
    """The source's Patient Orientation (row, column directions), as stored; empty (Type 2:
    unknown) if it has none. The result's pixels are the source's, so the source's orientation is
    theirs; a chest film's usual display (L\\F) is *not* assumed, since a wrong orientation marker
    puts a finding on the wrong side (the findings text says when it assumed the convention)."""
    value = source.get("PatientOrientation") or ()
    values = [str(v).strip() for v in ([value] if isinstance(value, str) else value)]
    return values if len(values) == 2 and all(values) else ""


def image_laterality(source: pydicom.Dataset) -> str:
    """The source's Image Laterality, or its (series) Laterality, where known; else ''."""
    for keyword in ("ImageLaterality", "Laterality"):
        value = _text(source, keyword)
        if value in LATERALITIES:
            return value
    return ""


def carry_over(result: pydicom.Dataset, source: pydicom.Dataset) -> None:
    """Set on ``result`` what a viewer needs to place it, from ``source`` (the stored file)."""
    result.PatientOrientation = patient_orientation(source)
    # General Series: the body part, so that dciodvfy (and a viewer) know it is unpaired. Without
    # it an SC must have Laterality (dciodvfy: "Missing attribute Type 2C Laterality").
    result.BodyPartExamined = _text(source, "BodyPartExamined")[:16] or BODY_PART
    # General Series Laterality is Type 2C, for a *paired* body part only: with the chest (or no
    # body part, in a SEG) dciodvfy reports "Attribute present when condition unsatisfied", and
    # an empty one "is only permitted to be empty when actually unknown". The side the source
    # records (its Image Laterality, or its Laterality) goes into Image Laterality, which both
    # IODs accept and which makes Laterality not required.
    if "Laterality" in result:
        del result.Laterality
    laterality = image_laterality(source)
    if laterality:
        result.ImageLaterality = laterality
    # Warning left: View Position (0018,5101) is in neither the SEG nor the SC IOD, so dciodvfy
    # says "Attribute is not present in standard DICOM IOD ... this is a Standard Extended SOP
    # Class". Kept on purpose: PS3.4 allows standard attributes beyond the IOD (a Standard
    # Extended SOP Class), and a hanging protocol needs it to put the result next to its PA/AP
    # film; the IODs have no other place for the view.
    view = _text(source, "ViewPosition")
    if view:
        result.ViewPosition = view[:16]
    for keyword in DEIDENTIFICATION:
        if keyword in source and keyword not in result:
            result[keyword] = source[keyword]


def pixel_spacing(source: pydicom.Dataset) -> list[float] | None:
    """Pixel Spacing (in the patient) where the source has it, else its Imager Pixel Spacing (at
    the detector): the spacing for the SEG's Pixel Measures, which has no place for the second."""
    spacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing")
    return [float(v) for v in spacing] if spacing else None


def _decimal_strings(values) -> list[DSfloat]:
    # Written anew at most 16 characters each: the SIIM files' 0.14300000000000002 is 19, which
    # dciodvfy reports as an error ("Length invalid for this VR").
    return [DSfloat(float(v), auto_format=True) for v in values]


def carry_spacing(result: pydicom.Dataset, source: pydicom.Dataset) -> None:
    """A Secondary Capture's spacing attributes, each under the source's name: Pixel Spacing (in
    the SC Image module) only where the source has it, Imager Pixel Spacing as such (the two
    differ by the projection's magnification)."""
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword in result:
            del result[keyword]
    if source.get("PixelSpacing"):
        result.PixelSpacing = _decimal_strings(source.PixelSpacing)
    if source.get("ImagerPixelSpacing"):
        # Warning left: Imager Pixel Spacing is not in the SC IOD (dciodvfy: "not present in
        # standard DICOM IOD", a Standard Extended SOP Class). Kept rather than written as Pixel
        # Spacing, which would claim a calibration in the patient the source does not have.
        result.ImagerPixelSpacing = _decimal_strings(source.ImagerPixelSpacing)
