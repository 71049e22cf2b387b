"""Imported by ``ml.core.bounded``'s fork server only: reads a tiny image of each kind once, so
that the decoders' lazy imports (pydicom's pixel handlers, Pillow's plugins: about 0.3 s) happen
in the server before it forks, not again in every child that reads a file."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from ml.core.errors import XRayError
from ml.core.reading import read_xray

SIDE = 64  # reading.MIN_SIDE


def _encoded(fmt: str, mode: str = "L") -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((SIDE, SIDE), 128, dtype=np.uint8)).convert(mode).save(out, fmt)
    return out.getvalue()


def _jpeg_dicom() -> bytes:
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import JPEGBaseline8Bit, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.Modality = "CR"
    dataset.Rows = dataset.Columns = SIDE
    dataset.SamplesPerPixel, dataset.PhotometricInterpretation = 1, "MONOCHROME2"
    dataset.BitsAllocated = dataset.BitsStored = 8
    dataset.HighBit, dataset.PixelRepresentation = 7, 0
    dataset.PixelData = encapsulate([_encoded("JPEG")])
    dataset["PixelData"].VR = "OB"
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def warm_up() -> None:
    for sample in (_encoded("PNG"), _encoded("JPEG"), _encoded("PNG", "I;16"), _jpeg_dicom()):
        try:
            read_xray(sample)
        except XRayError:  # a warm-up that fails costs only time later
            pass


warm_up()
