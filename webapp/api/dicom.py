"""DICOM results for a DICOM input: a Segmentation (SEG) object with the algorithm identified,
and a Secondary Capture (SC) of the overlay for viewers that cannot show SEG.

Both are built by highdicom from the stored original (so patient/study identity, study and
frame of reference are those of the input) and the stored result mask. They are built on first
request and kept in private storage next to the mask, named by the run that produced the result,
so that every request returns the same SOP instance (same UIDs)."""

from __future__ import annotations

import io

import highdicom as hd
import numpy as np
import pydicom
from django.core.files.base import ContentFile
from PIL import Image
from pydicom.sr.codedict import codes

from webapp.cases.models import CaseImage
from webapp.cases.services import rendering
from webapp.cases.storage import private_storage

ALGORITHM_NAME = "Pneumothorax Triage U-Net"
MANUFACTURER = "Pneumothorax Triage"
SEGMENT_LABEL = "Pneumothorax"
KINDS = ("seg", "sc")


class NotAvailable(Exception):
    """No DICOM result for this image (not a DICOM input, or no result yet)."""


def _read_source(image: CaseImage) -> pydicom.Dataset:
    with private_storage.open(image.original.name, "rb") as handle:
        dataset = pydicom.dcmread(handle)
    return dataset  # compressed pixel data is fine: only the header is referenced


def _read_mask(job) -> np.ndarray:
    with private_storage.open(job.mask.name, "rb") as handle:
        return np.asarray(Image.open(handle).convert("L")) > 0


def build_segmentation(image: CaseImage, source: pydicom.Dataset, mask: np.ndarray) -> hd.seg.Segmentation:
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
    spacing = getattr(source, "PixelSpacing", None) or getattr(source, "ImagerPixelSpacing", None)
    # A projection radiograph has no slice thickness, but readers (highdicom's included) require
    # one in the Pixel Measures Sequence whenever it is present: 1 mm, nominal.
    measures = hd.PixelMeasuresSequence(pixel_spacing=[float(v) for v in spacing], slice_thickness=1.0) \
        if spacing else None
    return hd.seg.Segmentation(
        source_images=[source], pixel_measures=measures, pixel_array=mask.astype(np.uint8)[None, ...],
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description],
        series_instance_uid=hd.UID(), series_number=901, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer=MANUFACTURER, manufacturer_model_name=ALGORITHM_NAME,
        software_versions=version[:64], device_serial_number=str(job.pk),
        content_description="Pneumothorax (decision support)", content_label="PNEUMOTHORAX",
        omit_empty_frames=False,
    )


def build_secondary_capture(image: CaseImage, source: pydicom.Dataset, mask: np.ndarray) -> hd.sc.SCImage:
    from ml.reading import read_xray

    with private_storage.open(image.original.name, "rb") as handle:
        xray = read_xray(handle.read())
    rgb = rendering.overlay_rgb(xray.pixels, mask.astype(np.uint8))
    spacing = getattr(source, "PixelSpacing", None) or getattr(source, "ImagerPixelSpacing", None)
    # The overlay is the input's pixels: the input's orientation, or a chest radiograph's usual
    # display (patient's left towards the right of the rows, feet down the columns).
    orientation = tuple(str(v) for v in (getattr(source, "PatientOrientation", None) or ()))
    if len(orientation) != 2 or not all(orientation):
        orientation = ("L", "F")
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source, pixel_array=np.ascontiguousarray(rgb), photometric_interpretation="RGB",
        bits_allocated=8, coordinate_system="PATIENT", series_instance_uid=hd.UID(),
        series_number=902, sop_instance_uid=hd.UID(), instance_number=1,
        manufacturer=MANUFACTURER, patient_orientation=orientation,
        pixel_spacing=tuple(float(v) for v in spacing) if spacing else None,
    )
    sc.SeriesDescription = "Pneumothorax overlay (decision support)"
    sc.ImageComments = (f"{ALGORITHM_NAME} {image.job.model_version}: "
                        f"probability {image.job.probability:.3f}")[:10240]
    return sc


def result_file(image: CaseImage, kind: str) -> str:
    """The storage name of the SEG or SC for this image's result, built on first use."""
    if kind not in KINDS:
        raise NotAvailable("unknown kind")
    job = image.job
    if image.source_format != "dicom" or job.status != "done" or not job.mask.name:
        raise NotAvailable("available for a finished DICOM input only")
    name = f"cases/{image.case_id}/{image.pk}/{kind}-{job.run_token[:12]}.dcm"
    if private_storage.exists(name):
        return name
    source = _read_source(image)
    mask = _read_mask(job)
    if mask.shape != (int(source.Rows), int(source.Columns)):
        raise NotAvailable("the mask does not match the input's size")
    dataset = build_segmentation(image, source, mask) if kind == "seg" else \
        build_secondary_capture(image, source, mask)
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    # Two concurrent first requests may both build one; the second save gets another name,
    # which is harmless (the first is the one served from then on).
    return private_storage.save(name, ContentFile(buffer.getvalue()))
