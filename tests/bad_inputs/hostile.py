"""Small files that ask a decoder for gigabytes or minutes (issue 21), crafted here from scratch
and from the shared images (no binaries committed): a 16-bit PNG of 8192 x 8192 in about a MB, a
DICOM in the Deflated transfer syntax with 150 MB of zeros in under a MB, a progressive JPEG
whose one scan repeats thousands of times, and that JPEG inside a DICOM."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pydicom
from PIL import Image

from tests.bad_inputs.corpus import encode, png_chunk, real, xray_pixels
from tests.support.dicom import dicom_bytes


def png16(side: int) -> bytes:
    """A valid 16-bit greyscale PNG of side x side, row r holding the value r * 8 (a gradient:
    every row its own level), compressed as it is built so that the test never holds it raw."""
    header = struct.pack(">IIBBBBB", side, side, 16, 0, 0, 0, 0)
    packer, chunks = zlib.compressobj(6), []
    for row in range(side):
        chunks.append(packer.compress(b"\x00" + struct.pack(">H", row * 8 % 65536) * side))
    chunks.append(packer.flush())
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", b"".join(chunks))
            + png_chunk(b"IEND", b""))


def _deflated(dataset_bytes: bytes, trailer_zeros: int = 0) -> bytes:
    """A PS3.10 file in the Deflated transfer syntax holding ``dataset_bytes`` (Explicit VR Little
    Endian, file meta included) and, after it, a private OB element of ``trailer_zeros`` zeros."""
    source = pydicom.dcmread(io.BytesIO(dataset_bytes))
    meta = source.file_meta
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1.99"
    head = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(
        pydicom.filebase.DicomFileLike(head), meta, enforce_standard=True)
    body = dataset_bytes[_dataset_offset(dataset_bytes):]
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    deflated = [packer.compress(body)]
    if trailer_zeros:
        # (7FE1,0010) OB, after the pixel data: tags stay in ascending order.
        deflated.append(packer.compress(struct.pack("<HH2sHI", 0x7FE1, 0x0010, b"OB", 0,
                                                    trailer_zeros)))
        zeros = bytes(2**20)
        for _ in range(trailer_zeros // len(zeros)):
            deflated.append(packer.compress(zeros))
    deflated.append(packer.flush())
    return b"\x00" * 128 + b"DICM" + head.getvalue() + b"".join(deflated)


def _dataset_offset(data: bytes) -> int:
    handle = io.BytesIO(data)
    pydicom.filereader.read_preamble(handle, False)
    pydicom.filereader._read_file_meta_info(handle)
    return handle.tell()


def explicit_dicom() -> bytes:
    """A small 16-bit CR in Explicit VR Little Endian, from a shared image."""
    pixels = xray_pixels(256).astype(np.uint16) * 16
    return dicom_bytes(pixels, modality="CR", PatientName="TEST^DEFLATE", PatientID="DEF-1",
                       PixelSpacing=[0.5, 0.5])


def deflated_bomb(zeros_mb: int = 150) -> bytes:
    """Under a MB on disk; inflated, the data set is ``zeros_mb`` MB bigger than its image."""
    return _deflated(explicit_dicom(), zeros_mb * 2**20)


def deflated_dicom() -> bytes:
    """The same small CR, legitimately Deflated: accepted."""
    return _deflated(explicit_dicom())


def many_scan_jpeg(scans: int = 8000, side: int = 512, repeat: str = "smallest") -> bytes:
    """A progressive JPEG of a shared X-ray in which one scan (its ``repeat``: "smallest", a few
    dozen bytes, or "last", the largest) repeats until there are ``scans`` scans: libjpeg decodes
    every one of them again, so the time grows with the count and not with the file's size."""
    data = encode(Image.fromarray(xray_pixels(side)), "JPEG", progressive=True, quality=85)
    starts = [i for i in range(len(data) - 1) if data[i:i + 2] == b"\xff\xda"]
    segments = [data[a:b] for a, b in zip(starts, starts[1:] + [len(data) - 2])]
    scan = min(segments, key=len) if repeat == "smallest" else segments[-1]
    return data[:-2] + scan * max(0, scans - len(segments)) + data[-2:]


def many_scan_jpeg_dicom(scans: int = 8000) -> bytes:
    """That JPEG as the encapsulated pixel data of a CR (JPEG Extended, PS3.5 A.4)."""
    from pydicom.encaps import encapsulate

    dataset = pydicom.dcmread(io.BytesIO(real("dcm")))  # a shared JPEG Baseline CR
    dataset.PixelData = encapsulate([many_scan_jpeg(scans, side=int(dataset.Rows))])
    dataset["PixelData"].VR = "OB"
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.51"
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()
