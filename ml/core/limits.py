"""Cheap checks on an untrusted X-ray file's bytes, before anything is decoded (issue 21).

A small file can ask a decoder for far more work than its size suggests: a progressive JPEG whose
one scan repeats thousands of times (time grows with every scan), a DICOM in the Deflated transfer
syntax that inflates a thousandfold. These checks read only the bytes and refuse such files in
milliseconds; ``ml.core.bounded`` then decodes what passes with a memory ceiling and a deadline.
"""

from __future__ import annotations

import io
import zlib

from ml.core.errors import CorruptImage, DecodeLimitExceeded

# A chest radiograph is at most a few thousand pixels a side: flat-panel detectors are <= 4,300
# px, film digitisers about 4,096 x 5,120 (14 x 17 inch at 85 micrometres). 6,144 leaves room
# for those and keeps the largest 16-bit image the reader accepts at 75 MB.
MAX_SIDE = 6144

# Baseline JPEG has one scan (one per component when not interleaved); libjpeg's progressive
# modes use 6 (grey) to 10 (colour); optimisers (mozjpeg) a few more. Each scan is decoded again
# over the whole image, so the count bounds the time.
MAX_JPEG_SCANS = 64
_START_OF_SCAN = b"\xff\xda"

DEFLATED = "1.2.840.10008.1.2.1.99"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
# The largest data set a radiograph needs: 16-bit pixels at the largest size, and the header.
HEADER_BYTES = 4 * 2**20
MAX_DATASET_BYTES = MAX_SIDE * MAX_SIDE * 2 + HEADER_BYTES

# JPEG processes that code scans with SOS markers (PS3.5 10 and annex A.4): baseline, extended,
# lossless (retired ones included) and JPEG-LS. JPEG 2000 (.4.9x, .4.20x) has no SOS.
_SOS_SYNTAX_PREFIX = "1.2.840.10008.1.2.4."
_SOS_SYNTAX_SUFFIXES = {str(n) for n in range(50, 71)} | {"80", "81"}


def count_jpeg_scans(stream: bytes) -> int:
    """The number of SOS markers in a JPEG stream, counted as bytes: an upper bound on the scans
    a decoder sees (entropy-coded data never holds FF DA, it stuffs FF as FF 00), so that no
    marker can hide from it; metadata (an EXIF thumbnail) may add one or two."""
    return stream.count(_START_OF_SCAN)


def check_jpeg_scans(stream: bytes, limit: int = MAX_JPEG_SCANS, what: str = "JPEG") -> None:
    scans = count_jpeg_scans(stream)
    if scans > limit:
        raise DecodeLimitExceeded(
            f"The {what} image is coded in {scans} scans; an X-ray needs at most {limit} "
            "(a file built to make decoding slow is refused).")


def is_sos_syntax(transfer_syntax: str) -> bool:
    return (transfer_syntax.startswith(_SOS_SYNTAX_PREFIX)
            and transfer_syntax[len(_SOS_SYNTAX_PREFIX):] in _SOS_SYNTAX_SUFFIXES)


def _split_meta(data: bytes):
    """(file meta dataset, offset of the data set) of a PS3.10 file."""
    from pydicom.filereader import _read_file_meta_info, read_preamble

    handle = io.BytesIO(data)
    try:
        read_preamble(handle, False)
        meta = _read_file_meta_info(handle)
    except Exception as exc:  # pydicom raises many types on a damaged header
        raise CorruptImage(f"The DICOM file meta information cannot be read ({exc}).") from exc
    return meta, handle.tell()


def inflate_dicom(data: bytes, max_bytes: int = MAX_DATASET_BYTES, cut: bool = False) -> bytes:
    """A DICOM file in the Deflated transfer syntax as the same file in Explicit VR Little Endian
    (what the deflated stream holds), inflated at most to ``max_bytes``: pydicom inflates without
    a bound (1000:1 and more). Other files are returned as they are.

    Raises DecodeLimitExceeded past ``max_bytes`` (``cut``: keeps the first ``max_bytes``
    instead); CorruptImage for a damaged stream."""
    if len(data) < 132 or data[128:132] != b"DICM" or DEFLATED.encode() not in data:
        return data  # (the meta's length is the sender's: the whole file is searched)
    meta, offset = _split_meta(data)
    if str(meta.get("TransferSyntaxUID", "")).strip("\x00 ") != DEFLATED:
        return data
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        body = inflater.decompress(data[offset:], max_bytes + 1)
    except zlib.error as exc:
        raise CorruptImage(f"The DICOM file's deflated data set is damaged ({exc}).") from exc
    if len(body) > max_bytes and not cut:
        raise DecodeLimitExceeded(
            f"The DICOM file's deflated data set inflates to more than {max_bytes // 2**20} MB, "
            "more than any chest radiograph needs (a file built to exhaust memory is refused).")
    return _with_meta(data[:132], meta, body[:max_bytes])


def _with_meta(preamble: bytes, meta, body: bytes) -> bytes:
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info

    meta.TransferSyntaxUID = EXPLICIT_VR_LITTLE_ENDIAN
    out = DicomBytesIO()
    out.write(preamble)
    try:
        write_file_meta_info(out, meta, enforce_standard=True)
    except (ValueError, TypeError) as exc:  # a required meta element missing
        raise CorruptImage(f"The DICOM file meta information is incomplete ({exc}).") from exc
    out.write(body)
    return out.getvalue()


def dicom_header_bytes(data: bytes) -> bytes:
    """Enough of a DICOM file to read its header (``stop_before_pixels``) without inflating more
    than HEADER_BYTES of a Deflated one: elements after the pixel data are not read anyway."""
    return inflate_dicom(data, HEADER_BYTES, cut=True)


def read_dicom_header(data: bytes):
    """pydicom's header of a DICOM file, without its pixel data, inflating at most HEADER_BYTES
    of a Deflated one (``pydicom.dcmread(..., stop_before_pixels=True)`` inflates it all)."""
    import pydicom

    return pydicom.dcmread(io.BytesIO(dicom_header_bytes(data)), stop_before_pixels=True)
