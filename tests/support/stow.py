"""Building and reading DICOMweb STOW-RS requests and answers (PS3.18 10.5) for the tests of
tests/api/test_stow_rs*.py: multipart/related bodies of real DICOMs of the shared SIIM-ACR
subset, and the Store Instances Response's DICOM JSON read back into plain dicts."""

import io

import numpy as np
import pydicom
from pydicom.uid import CTImageStorage

from tests.support.data import subset_image
from tests.support.dicom import dicom_bytes

URL = "/api/v1/dicomweb/studies/"
BOUNDARY = "stow-7d3a9c"
DICOM_TYPE = f'multipart/related; type="application/dicom"; boundary="{BOUNDARY}"'

# DICOM JSON tags of the Store Instances Response
RETRIEVE_URL, REFERENCED, FAILED = "00081190", "00081199", "00081198"
SOP_CLASS, SOP_INSTANCE, FAILURE_REASON = "00081150", "00081155", "00081197"


def multipart(*parts, boundary=BOUNDARY, close=True) -> bytes:
    """A multipart/related body: each part is bytes (application/dicom) or (content type, bytes)."""
    body = b"A preamble, which a reader ignores.\r\n"
    for part in parts:
        content_type, data = part if isinstance(part, tuple) else ("application/dicom", part)
        body += (f"--{boundary}\r\nContent-Type: {content_type}\r\n\r\n".encode()
                 + data + b"\r\n")
    return body + (f"--{boundary}--\r\n".encode() if close else b"")


def shared_dicom(index=0, **changes) -> bytes:
    """The ``index``-th DICOM of the shared subset, with header elements changed."""
    data = subset_image("dcm", index).read_bytes()
    if not changes:
        return data
    dataset = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def uids(data: bytes) -> dict:
    dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return {"class": dataset.SOPClassUID, "instance": dataset.SOPInstanceUID,
            "study": dataset.StudyInstanceUID}


def ct_dicom() -> bytes:
    rows = np.linspace(0, 255, 256, dtype=np.float64)
    return dicom_bytes(np.add.outer(rows, rows).astype(np.uint16), modality="CT",
                       SOPClassUID=CTImageStorage)


def stow(client, body, url=URL, content_type=DICOM_TYPE, **extra):
    return client.post(url, data=body, content_type=content_type, **extra)


def values(item, tag):
    return item[tag].get("Value", [])


def referenced(body) -> list[dict]:
    return [{"class": values(i, SOP_CLASS)[0], "instance": values(i, SOP_INSTANCE)[0],
             "url": values(i, RETRIEVE_URL)[0]} for i in values(body, REFERENCED)]


def failures(body) -> list[dict]:
    return [{"class": (values(i, SOP_CLASS) or [None])[0] if SOP_CLASS in i else None,
             "instance": (values(i, SOP_INSTANCE) or [None])[0] if SOP_INSTANCE in i else None,
             "reason": values(i, FAILURE_REASON)[0]} for i in values(body, FAILED)]
