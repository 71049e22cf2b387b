"""Synthetic DICOM files for tests: one builder shared by the ml readers' tests, the web and API
tests and the bad-input corpus, so all exercise the same, valid file structure."""

from __future__ import annotations

import io

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid


def dicom_bytes(pixels, *, photometric="MONOCHROME2", modality="CR", bits_stored=None, frames=1,
                pixel_data=True, **elements) -> bytes:
    """A Secondary Capture file of ``pixels`` (rows x columns, or frames x rows x columns; the
    dtype sets Bits Allocated). Keyword arguments become header elements, overriding defaults."""
    array = np.ascontiguousarray(pixels)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = modality
    ds.PatientID = "TEST"
    ds.Rows, ds.Columns = array.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = array.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    if pixel_data:
        ds.PixelData = array.tobytes()
    for name, value in elements.items():
        setattr(ds, name, value)
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def chest_dicom(view_position=None, name=None, **elements):
    """A synthetic chest film, as an uploaded file, with this ViewPosition, or none."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    rows = np.linspace(0, 255, 256, dtype=np.float64)
    pixels = np.add.outer(rows, rows[::-1]).astype(np.uint16) // 2
    if view_position is not None:
        elements["ViewPosition"] = view_position
    data = dicom_bytes(pixels.astype(np.uint8), BodyPartExamined="CHEST", **elements)
    return SimpleUploadedFile(name or f"chest-{view_position or 'none'}.dcm", data)
