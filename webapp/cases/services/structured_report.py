"""A DICOM Structured Report of a result, for a PACS (issue 12): the finding, its figures and
the same words as the case page, in the source's study, next to the SEG and the SC.

The construction (highdicom's SR API), and why:

- A **Comprehensive SR** (``hd.sr.ComprehensiveSR``) whose content is a **TID 1500 Measurement
  Report** (``hd.sr.MeasurementReport``): the template PACS and viewers know for the results of
  an algorithm, with coded values that a program can read back without parsing text.
- **Observer context**: a device (TID 1004), the algorithm, not a person: nobody has read the
  image when the report is made, and the report says so (Verification Flag UNVERIFIED,
  Preliminary Flag PRELIMINARY).
- **Procedure reported**: plain chest X-ray (SCT 399208008).
- **Image library** (TID 1600/1601/1602/1603): the source, with the descriptors it has:
  modality, frame of reference, rows and columns, view, patient orientation, pixel spacing.
  Built here from highdicom's content items rather than by ``hd.sr.ImageLibrary``, which reads
  the Patient Orientation and Imager Pixel Spacing of every projection radiograph: a
  de-identified SIIM film (a Secondary Capture, modality CR) has neither, and an optional
  descriptor that the source does not give is left out here, not invented.
- **Imaging measurements**: one measurement group (TID 1501) with the tracking identifier, the
  finding (pneumothorax), the algorithm (TID 4019, with the model version), the source image,
  the qualitative evaluation "Pneumothorax: present / absent" (the call at the model's
  operating point) and the measurements: the probability (unit "1"), the area (cm² where the
  pixel spacing is known, else % of the image) and the rim depth (mm, where known).
- **The words**, as TEXT items in TID 1500's own "Qualitative Evaluations" container (rows
  12-14, CODE or TEXT items): highdicom's measurement group takes coded evaluations only, and its
  ``MeasurementReport`` has no argument for the container, so it is added to the report's root
  here. The words are the case page's (``display.result_text``, ``display.findings_rows``):
  the result with its threshold, side (and how it was read), zones, area, rim depth and the
  large call, "review first" where it applies, the model version, and that this is decision
  support, not a diagnosis.

What it carries over from the source: patient and study (highdicom copies them from the source,
as stored, i.e. de-identified) and the de-identification record. The placement attributes that
``dicom_attributes.carry_over`` gives the SEG and the SC (patient orientation, body part,
laterality, view position) are not in the SR IOD (dciodvfy: "not present in standard DICOM
IOD", a Standard Extended SOP Class) and are left out of the header: the view, the orientation
and the spacing are in the image library, where TID 1603 puts them, and the procedure reported
says the chest. So dciodvfy gives the SR only the warnings every result has (the DICOMDIR
identity that de-identification emptied; see ``results``).

The text has non-ASCII characters (≥, ², ·), so the SR is written in UTF-8 (ISO_IR 192).

Identity: by default new UIDs; given UIDs are used as they are (a sender that passes the same
UIDs again gets the same instance). The UIDs inside the content are derived, not drawn: the
tracking UID from the SOP Instance UID, the device observer UID from the algorithm and model
version; so the same UIDs for the same result give the same content tree (only the creation
and content date and time differ)."""

from __future__ import annotations

import highdicom as hd
import pydicom
from highdicom.sr import CodedConcept, RelationshipTypeValues
from pydicom.sr.codedict import codes
from pydicom.uid import generate_uid

from webapp.cases.models import CaseImage
from webapp.cases.services import dicom_attributes, display, status
from webapp.cases.services.algorithm import ALGORITHM_NAME, MANUFACTURER

SERIES_NUMBER = 903
SERIES_DESCRIPTION = "Pneumothorax report (decision support)"

PLAIN_CHEST_XRAY = CodedConcept("399208008", "SCT", "Plain chest X-ray")
QUALITATIVE_EVALUATIONS = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
SOURCE = CodedConcept("260753009", "SCT", "Source")
PROBABILITY = codes.DCM.Probability
AREA = codes.SCT.Area
RIM_DEPTH = codes.SCT.Depth
# The case page's findings rows (display.findings_rows), each under a coded name.
ROW_NAMES = {
    "Side": CodedConcept("272741003", "SCT", "Laterality"),
    "Where": CodedConcept("363698007", "SCT", "Finding Site"),
    "Area": AREA,
    "Rim depth": RIM_DEPTH,
}
MODALITIES = {"CR": codes.cid29.ComputedRadiography, "DX": codes.cid29.DigitalRadiography}
VIEWS = {"PA": codes.SCT.PosteroAnterior, "AP": codes.SCT.AnteroPosterior}

# As the worklist's notice says it (templates/cases/list.html).
REVIEW_FIRST = ("Review first: called positive, or above the model's high-sensitivity "
                "threshold.")
# As the case report says it (templates/cases/report.html), with the model that made it.
NOT_A_DIAGNOSIS = ("Decision support, not a diagnosis. Produced by software ({software}); every "
                   "result must be read by a clinician. \"Not detected\" does not rule out a "
                   "pneumothorax, and every size is an estimate from the model's outline.")

CONTAINS = RelationshipTypeValues.CONTAINS
HAS_ACQ_CONTEXT = RelationshipTypeValues.HAS_ACQ_CONTEXT


def build_structured_report(image: CaseImage, source: pydicom.Dataset, *,
                            series_instance_uid: str | None = None,
                            sop_instance_uid: str | None = None,
                            evidence=()) -> hd.sr.ComprehensiveSR:
    """The SR of ``image``'s finished result. ``source``: the stored (de-identified) input, as
    read for the result (``dicom_attributes.with_identity_elements``); ``evidence``: other
    instances of the study the report may reference (the SEG, the SC)."""
    job = image.job
    version = job.model_version or "unknown"
    sop_instance_uid = sop_instance_uid or hd.UID()
    software = f"{ALGORITHM_NAME}, model {version}"

    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=generate_uid(entropy_srcs=[MANUFACTURER, ALGORITHM_NAME, version]),
        name=ALGORITHM_NAME[:64], manufacturer_name=MANUFACTURER,
        model_name=ALGORITHM_NAME[:64])
    observation_context = hd.sr.ObservationContext(
        observer_person_context=None,
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.cid270.Device, observer_identifying_attributes=device))

    group = hd.sr.MeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(
            uid=generate_uid(entropy_srcs=[sop_instance_uid, "pneumothorax"]),
            identifier="Pneumothorax"),
        finding_type=codes.SCT.Pneumothorax,
        algorithm_id=hd.sr.AlgorithmIdentification(
            name=ALGORITHM_NAME, version=version, manufacturer=MANUFACTURER),
        measurements=_measurements(job),
        qualitative_evaluations=[hd.sr.QualitativeEvaluation(
            name=codes.SCT.Pneumothorax,
            value=codes.SCT.Present if job.positive else codes.SCT.Absent)],
        source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
    )
    report = hd.sr.MeasurementReport(
        observation_context=observation_context, procedure_reported=PLAIN_CHEST_XRAY,
        imaging_measurements=[group])
    root = report[0]
    # TID 1500 row 5 (the image library) comes before row 6 (the imaging measurements)...
    measurements_at = next(i for i, item in enumerate(root.ContentSequence)
                           if item.ConceptNameCodeSequence[0].CodeValue
                           == codes.DCM.ImagingMeasurements.value)
    root.ContentSequence.insert(measurements_at, _image_library(source))
    # ... and row 12 (the qualitative evaluations, here the words) after them.
    root.ContentSequence.append(_statements(job, software))

    sr = hd.sr.ComprehensiveSR(
        evidence=[source, *evidence], content=report,
        series_instance_uid=series_instance_uid or hd.UID(), series_number=SERIES_NUMBER,
        sop_instance_uid=sop_instance_uid, instance_number=1,
        manufacturer=MANUFACTURER, is_complete=True, is_final=False,
        is_verified=False)
    sr.SpecificCharacterSet = "ISO_IR 192"
    sr.SeriesDescription = SERIES_DESCRIPTION
    # The de-identification record of the Patient module, as the source has it (highdicom
    # copies the Patient module; this makes sure, as dicom_attributes.carry_over does).
    for keyword in dicom_attributes.DEIDENTIFICATION:
        if keyword in source and keyword not in sr:
            sr[keyword] = source[keyword]
    return sr


def _measurements(job) -> list[hd.sr.Measurement]:
    """Probability; area in cm² where known, else % of the image; rim depth in mm where known."""
    findings = job.findings or {}
    items = [hd.sr.Measurement(name=PROBABILITY, value=float(job.probability),
                               unit=codes.UCUM.NoUnits)]
    if job.area_cm2 is not None:
        items.append(hd.sr.Measurement(name=AREA, value=float(job.area_cm2),
                                       unit=codes.UCUM.SquareCentimeter))
    elif job.area_fraction is not None:
        items.append(hd.sr.Measurement(name=AREA, value=100.0 * float(job.area_fraction),
                                       unit=codes.UCUM.Percent))
    if findings.get("rim_depth_mm") is not None:
        items.append(hd.sr.Measurement(name=RIM_DEPTH, value=float(findings["rim_depth_mm"]),
                                       unit=codes.UCUM.Millimeter))
    return items


def _text(name, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(name=name, value=value, relationship_type=CONTAINS)


def _statements(job, software: str) -> hd.sr.ContainerContentItem:
    """TID 1500 rows 12 and 14: the case page's words, as TEXT items."""
    summary = display.describe_results([status.job_summary(job)])[0]
    items = [_text(codes.DCM.Summary, summary["result_text"])]
    items += [_text(ROW_NAMES.get(label, codes.DCM.Finding), f"{value}; {how}" if how else value)
              for label, value, how in summary["findings_rows"]]
    if job.review_first:
        items.append(_text(codes.DCM.Recommendation, REVIEW_FIRST))
    items.append(_text(codes.DCM.Comment, NOT_A_DIAGNOSIS.format(software=software)))
    container = hd.sr.ContainerContentItem(name=QUALITATIVE_EVALUATIONS, relationship_type=CONTAINS)
    container.ContentSequence = hd.sr.ContentSequence(items)
    return container


def _image_library(source: pydicom.Dataset) -> hd.sr.ContainerContentItem:
    """TID 1600: one group (TID 1601) holding the source, with its descriptors."""
    entry = hd.sr.ImageContentItem(
        name=SOURCE, referenced_sop_class_uid=source.SOPClassUID,
        referenced_sop_instance_uid=source.SOPInstanceUID, relationship_type=CONTAINS)
    entry.ContentSequence = hd.sr.ContentSequence(_descriptors(source))
    group = hd.sr.ContainerContentItem(name=codes.DCM.ImageLibraryGroup, relationship_type=CONTAINS)
    group.ContentSequence = hd.sr.ContentSequence([entry])
    library = hd.sr.ContainerContentItem(name=codes.DCM.ImageLibrary, relationship_type=CONTAINS)
    library.ContentSequence = hd.sr.ContentSequence([group])
    return library


def _descriptors(source: pydicom.Dataset) -> list:
    """TID 1602 (and 1603, projection radiography) descriptors, those the source gives."""
    pixels = CodedConcept("{pixels}", "UCUM", "Pixels")
    modality = MODALITIES.get(str(source.get("Modality", "")).strip().upper(), codes.cid32.Other)
    items = [hd.sr.CodeContentItem(name=codes.DCM.Modality, value=modality,
                                   relationship_type=HAS_ACQ_CONTEXT)]
    if source.get("FrameOfReferenceUID"):
        items.append(hd.sr.UIDRefContentItem(name=codes.DCM.FrameOfReferenceUID,
                                             value=source.FrameOfReferenceUID,
                                             relationship_type=HAS_ACQ_CONTEXT))
    items += [
        hd.sr.NumContentItem(name=codes.DCM.PixelDataRows, value=int(source.Rows), unit=pixels,
                             relationship_type=HAS_ACQ_CONTEXT),
        hd.sr.NumContentItem(name=codes.DCM.PixelDataColumns, value=int(source.Columns),
                             unit=pixels, relationship_type=HAS_ACQ_CONTEXT),
    ]
    view = VIEWS.get(str(source.get("ViewPosition", "")).strip().upper())
    if view is not None:
        items.append(hd.sr.CodeContentItem(name=codes.DCM.ImageView, value=view,
                                           relationship_type=HAS_ACQ_CONTEXT))
    orientation = dicom_attributes.patient_orientation(source)
    if orientation:
        items += [hd.sr.TextContentItem(name=name, value=value, relationship_type=HAS_ACQ_CONTEXT)
                  for name, value in zip((codes.DCM.PatientOrientationRow,
                                          codes.DCM.PatientOrientationColumn), orientation)]
    spacing = dicom_attributes.pixel_spacing(source)  # (row, column), as the findings used
    if spacing:
        items += [hd.sr.NumContentItem(name=name, value=value, unit=codes.UCUM.Millimeter,
                                       relationship_type=HAS_ACQ_CONTEXT)
                  for name, value in ((codes.DCM.HorizontalPixelSpacing, spacing[1]),
                                      (codes.DCM.VerticalPixelSpacing, spacing[0]))]
    return items
