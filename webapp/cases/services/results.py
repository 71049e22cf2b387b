"""DICOM results for a DICOM input: a Segmentation (SEG) object with the algorithm identified,
a Secondary Capture (SC) of the overlay for viewers that cannot show SEG, and a Structured
Report (SR: the finding, its figures and words; ``services.structured_report``).

All are built by highdicom from the stored original (so patient/study identity, study and
frame of reference are those of the input) and the stored result (the mask; for the SR, the
job's figures and findings). They are built on first request and kept in private storage
next to the mask, named by the run that produced the result (``services.files.result_name``), so
that every request returns the same SOP instance (same UIDs). Any interface may ask for them:
the API serves them, a DICOM sender could push them (with UIDs of its own, if it passes them)."""

from __future__ import annotations

import io

import highdicom as hd
import numpy as np
import pydicom
from PIL import Image
from pydicom.sr.codedict import codes

from ml.core.reading import read_xray
from webapp.cases.models import CaseImage, JobStatus
from webapp.cases.services import dicom_attributes, files, rendering, structured_report
from webapp.cases.services.algorithm import ALGORITHM_NAME, MANUFACTURER

SEGMENT_LABEL = "Pneumothorax"
KINDS = ("seg", "sc", "sr")


class NotAvailable(Exception):
    """No DICOM result for this image (not a DICOM input, or no result yet)."""


# Warnings left, in every result: "Missing attribute or value that would be needed to build
# DICOMDIR - Patient ID / Study Date / Study Time / Study ID". Patient and study identity are
# copied (by highdicom) from the stored file as they are, and de-identification emptied those
# (PS3.15 E.1, action Z): filling them in would put back what it took out, or invent a study.


def build_segmentation(image: CaseImage, source: pydicom.Dataset, mask: np.ndarray, *,
                       series_instance_uid: str | None = None,
                       sop_instance_uid: str | None = None) -> hd.seg.Segmentation:
    """UIDs: new ones by default; given ones are used as they are (a sender that passes the
    same UIDs again sends the same instance)."""
    job = image.job
    version = job.model_version or "unknown"
    algorithm = hd.AlgorithmIdentificationSequence(
        name=ALGORITHM_NAME, version=version, family=codes.cid7162.ArtificialIntelligence)
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label=SEGMENT_LABEL,
        segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Pneumothorax,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm)
    spacing = dicom_attributes.pixel_spacing(source)
    # A projection radiograph has no slice thickness, but readers (highdicom's included) require
    # one in the Pixel Measures Sequence whenever it is present: 1 mm, nominal.
    measures = hd.PixelMeasuresSequence(pixel_spacing=spacing, slice_thickness=1.0) \
        if spacing else None
    seg = hd.seg.Segmentation(
        source_images=[source], pixel_measures=measures, pixel_array=mask.astype(np.uint8)[None, ...],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=series_instance_uid or hd.UID(), series_number=901,
        sop_instance_uid=sop_instance_uid or hd.UID(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name=ALGORITHM_NAME,
        software_versions=version[:64], device_serial_number=str(job.pk),
        content_description="Pneumothorax (decision support)", content_label="PNEUMOTHORAX",
        omit_empty_frames=False,
    )
    # The General Image module's Patient Orientation (Type 2C, highdicom leaves it out: dciodvfy
    # "Missing attribute Type 2C PatientOrientation"), body part, laterality, view. Pixel
    # spacing is in the Pixel Measures only: a top-level Pixel Spacing is not in the SEG IOD.
    dicom_attributes.carry_over(seg, source)
    return seg


def build_secondary_capture(image: CaseImage, source: pydicom.Dataset, mask: np.ndarray,
                            original: bytes, *, series_instance_uid: str | None = None,
                            sop_instance_uid: str | None = None) -> hd.sc.SCImage:
    """``original``: the stored input's bytes, whose pixels (as the model read them) the overlay
    is drawn on, exactly as the overlay PNG. UIDs as for ``build_segmentation``."""
    rgb = rendering.overlay_rgb(read_xray(original).pixels, mask.astype(np.uint8))
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source, pixel_array=np.ascontiguousarray(rgb), photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT",
        series_instance_uid=series_instance_uid or hd.UID(), series_number=902,
        sop_instance_uid=sop_instance_uid or hd.UID(), instance_number=1,
        # highdicom wants an orientation for the patient coordinate system: a placeholder, which
        # the source's (as stored, or empty: unknown) replaces in ``carry_over`` below.
        manufacturer=MANUFACTURER, patient_orientation=("L", "F"),
    )
    # Body part and laterality (without them dciodvfy: "Missing attribute Type 2C Laterality"),
    # view, orientation, the de-identification record and the spacing, as the source has them.
    dicom_attributes.carry_over(sc, source)
    dicom_attributes.carry_spacing(sc, source)
    sc.SeriesDescription = "Pneumothorax overlay (decision support)"
    sc.ImageComments = (f"{ALGORITHM_NAME} {image.job.model_version}: "
                        f"probability {image.job.probability:.3f}")[:10240]
    return sc


def result_file(image: CaseImage, kind: str) -> str:
    """The storage name of the SEG, SC or SR for this image's result, built on first use. The
    SR references the SEG (built first if need be) as evidence."""
    if kind not in KINDS:
        raise NotAvailable("unknown kind")
    job = image.job
    if image.source_format != "dicom" or job.status != JobStatus.DONE or not job.mask.name:
        raise NotAvailable("available for a finished DICOM input only")
    name = files.result_name(image, kind, job.run_token, "dcm")
    if files.exists(name):
        return name
    original = files.read(image.original.name)
    # Compressed pixel data is fine: only the header of the source is referenced.
    source = dicom_attributes.with_identity_elements(pydicom.dcmread(io.BytesIO(original)))
    mask = np.asarray(Image.open(io.BytesIO(files.read(job.mask.name))).convert("L")) > 0
    if mask.shape != (int(source.Rows), int(source.Columns)):
        raise NotAvailable("the mask does not match the input's size")
    if kind == "seg":
        dataset = build_segmentation(image, source, mask)
    elif kind == "sc":
        dataset = build_secondary_capture(image, source, mask, original)
    else:

        seg = pydicom.dcmread(io.BytesIO(files.read(result_file(image, "seg"))),
                              stop_before_pixels=True)
        dataset = structured_report.build_structured_report(image, source, evidence=[seg])
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    # Two concurrent first requests may both build one; the second save gets another name,
    # which is harmless (the first is the one served from then on).
    return files.save(name, buffer.getvalue())
