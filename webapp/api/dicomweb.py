"""DICOMweb STOW-RS (PS3.18 section 10.5) plumbing for ``views.dicomweb``: reading a
``multipart/related; type="application/dicom"`` request body within a hard size bound, the
Failure Reason codes, and the Store Instances Response as DICOM JSON (PS3.18 annex F).

Reading: the request's Content-Type is checked before a byte of the body is read (415 for
anything but multipart/related with type application/dicom or no type). The body is read from
the request stream in chunks and fed to the standard library's MIME parser (``email``, the
HTTP policy), never more than ``max_body_bytes()`` (MAX_UPLOAD_FILES instances of
MAX_UPLOAD_FILE_BYTES each, plus room for part headers and boundaries): a Content-Length above
that, or a stream that runs past it, is refused with 413 as soon as it is seen. Django's
DATA_UPLOAD_MAX_MEMORY_SIZE bounds ``request.body`` only, which is never touched here.
"""

from __future__ import annotations

import email.errors
import email.parser
import email.policy
import re
import warnings
from dataclasses import dataclass

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import status as http
from rest_framework.exceptions import APIException, ParseError, UnsupportedMediaType
from rest_framework.parsers import BaseParser
from rest_framework.renderers import JSONRenderer

DICOM = "application/dicom"
MULTIPART_RELATED = "multipart/related"
CHUNK_BYTES = 1 << 20
PART_OVERHEAD_BYTES = 16 * 1024  # a part's boundary line and headers, generously

# Failure Reason (0008,1197) values of PS3.18 table I.2-2 (Store Instances Response).
OUT_OF_RESOURCES = 0xA700  # A7xx Refused out of Resources
DOES_NOT_MATCH_SOP_CLASS = 0xA900  # A9xx Error: Data Set does not match SOP Class
CANNOT_UNDERSTAND = 0xC000  # Cxxx Error: Cannot understand
PROCESSING_FAILURE = 0x0110
SOP_CLASS_NOT_SUPPORTED = 0x0122  # Referenced SOP Class not supported

# PS3.5 9.1 (digits and dots, at most 64), read leniently: components with leading zeros, which
# PS3.5 forbids, occur in the field and are accepted.
UID_PATTERN = re.compile(r"[0-9]+(\.[0-9]+)*")
UID_MAX_LENGTH = 64


class PayloadTooLarge(APIException):
    status_code = http.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request is too large."


@dataclass(frozen=True)
class Part:
    number: int  # 1-based, in the order of the body
    content_type: str  # lower case, without parameters
    data: bytes | None  # None: a nested multipart, which is no instance

    @property
    def name(self) -> str:
        return f"part {self.number}"


def is_uid(value: str) -> bool:
    return len(value) <= UID_MAX_LENGTH and UID_PATTERN.fullmatch(value) is not None


def max_body_bytes() -> int:
    return settings.MAX_UPLOAD_FILES * (settings.MAX_UPLOAD_FILE_BYTES + PART_OVERHEAD_BYTES)


def _megabytes(count: int) -> str:
    return f"{count / 2**20:.0f} MB"


# RFC 2046 5.1.1: 1 to 70 of these characters, the last not a space.
BOUNDARY_PATTERN = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")


def request_boundary(value: str) -> str:
    """The boundary of a STOW-RS request's Content-Type (415 unless multipart/related of DICOM
    or of no declared type; 400 without a valid boundary). Parameters are read as clients
    send them, quoted or not (``type=application/dicom`` is common, though "/" asks for quotes)."""
    if "\r" in value or "\n" in value:
        raise ParseError("The Content-Type header is malformed.")
    media_type, params = parse_header_parameters(value)
    params = {key.lower(): param for key, param in params.items()}
    if media_type != MULTIPART_RELATED:
        raise UnsupportedMediaType(value or "(none)", detail=(
            f'Send the instances as multipart/related; type="{DICOM}" (PS3.18 10.5), not '
            f"{value or 'a body without a Content-Type'}."))
    declared = (params.get("type") or DICOM).strip().lower()
    if declared != DICOM:
        raise UnsupportedMediaType(value, detail=(
            f'Only {DICOM} instances are accepted (multipart/related; type="{DICOM}"), not '
            f"{declared}: metadata with bulk data (application/dicom+json, +xml) is not supported."))
    boundary = params.get("boundary") or ""
    if not BOUNDARY_PATTERN.fullmatch(boundary):
        raise ParseError("The multipart/related Content-Type has no valid boundary parameter.")
    return boundary


def read_parts(request) -> list[Part]:
    """The parts of a STOW-RS request (``request``: DRF's), in order. Raises
    UnsupportedMediaType (415), PayloadTooLarge (413: the body or the number of parts over the
    limits) or ParseError (400: no body, no parts, a broken multipart structure)."""
    boundary = request_boundary(request.META.get("CONTENT_TYPE", ""))
    bound = max_body_bytes()
    too_large = (f"At most {settings.MAX_UPLOAD_FILES} instances of at most "
                 f"{_megabytes(settings.MAX_UPLOAD_FILE_BYTES)} each per request "
                 f"({_megabytes(bound)} in all); send the rest in further requests.")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length > bound:
        raise PayloadTooLarge(too_large)
    stream = request.stream if length > 0 else None  # DRF: None without a body
    if stream is None:
        raise ParseError("The request has no body (the instances go in multipart/related parts, "
                         "sent with a Content-Length).")
    parser = email.parser.BytesFeedParser(policy=email.policy.HTTP)
    parser.feed(f'Content-Type: {MULTIPART_RELATED}; boundary="{boundary}"\r\n\r\n'.encode())
    received = 0
    while chunk := stream.read(min(CHUNK_BYTES, bound + 1 - received)):
        received += len(chunk)
        if received > bound:
            raise PayloadTooLarge(too_large)
        parser.feed(chunk)
    message = parser.close()
    return _parts_of(message)


_BROKEN = (email.errors.StartBoundaryNotFoundDefect, email.errors.CloseBoundaryNotFoundDefect,
           email.errors.NoBoundaryInMultipartDefect, email.errors.MultipartInvariantViolationDefect)


def _parts_of(message) -> list[Part]:
    broken = [d for d in message.defects if isinstance(d, _BROKEN)]
    if broken or not message.is_multipart():
        cut = any(isinstance(d, email.errors.CloseBoundaryNotFoundDefect) for d in broken)
        raise ParseError("The multipart/related body ends without its closing boundary (was the "
                         "upload cut off?)." if cut else
                         "The body holds no part delimited by the boundary its Content-Type "
                         "names.")
    subparts = message.get_payload()
    if not subparts:
        raise ParseError("The multipart/related body holds no parts.")
    if len(subparts) > settings.MAX_UPLOAD_FILES:
        raise PayloadTooLarge(f"At most {settings.MAX_UPLOAD_FILES} instances per request "
                              f"(this one has {len(subparts)} parts); send the rest in further "
                              "requests.")
    parts = []
    for number, sub in enumerate(subparts, start=1):
        # A part without a Content-Type is of the type the request declares (RFC 2387 "type").
        content_type = sub.get_content_type() if sub.get("Content-Type") else DICOM
        data = None if sub.is_multipart() else sub.get_payload(decode=True)
        parts.append(Part(number=number, content_type=content_type, data=data))
    return parts


def header_uids(data: bytes | None) -> dict[str, str]:
    """The instance's SOP Class, SOP Instance and Study Instance UIDs, as far as its header can
    be read (the pixel data is not read); {} when it cannot be read at all."""
    from ml.core.limits import read_dicom_header  # a Deflated one: a bounded part inflated

    if not data:
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = read_dicom_header(data)
        meta = getattr(dataset, "file_meta", None) or {}
        found = {
            "sop_class": dataset.get("SOPClassUID") or meta.get("MediaStorageSOPClassUID"),
            "sop_instance": dataset.get("SOPInstanceUID") or meta.get("MediaStorageSOPInstanceUID"),
            "study": dataset.get("StudyInstanceUID"),
        }
    except Exception:  # any damage: the instance is reported without its UIDs
        return {}
    return {key: str(value).strip() for key, value in found.items()
            if value and is_uid(str(value).strip())}


def store_response(retrieve_url: str | None, stored: list[dict], failed: list[dict]) -> dict:
    """The Store Instances Response (PS3.18 10.5.3; the Store Instances Response Module of
    annex I) as DICOM JSON. ``stored``: dicts of sop_class, sop_instance, url; ``failed``: of sop_class and
    sop_instance (either may be missing) and reason (a Failure Reason code)."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    response = Dataset()
    response.RetrieveURL = retrieve_url or None  # type 2: present, empty without one study URL
    if failed:
        items = []
        for failure in failed:
            item = Dataset()
            if failure.get("sop_class"):
                item.ReferencedSOPClassUID = failure["sop_class"]
            if failure.get("sop_instance"):
                item.ReferencedSOPInstanceUID = failure["sop_instance"]
            item.FailureReason = failure["reason"]
            items.append(item)
        response.FailedSOPSequence = Sequence(items)
    if stored:
        items = []
        for instance in stored:
            item = Dataset()
            item.ReferencedSOPClassUID = instance["sop_class"]
            item.ReferencedSOPInstanceUID = instance["sop_instance"]
            item.RetrieveURL = instance["url"]
            items.append(item)
        response.ReferencedSOPSequence = Sequence(items)
    return response.to_json_dict()


WARNING_TEXT_CHARS = 240
WARNING_HEADER_CHARS = 3000  # proxies keep response headers in a few KB (nginx: 4-8 KB)


def warning_header(agent: str, messages: list[str]) -> str:
    """An HTTP Warning header value (RFC 7234 5.5: ``299 agent "text"``, comma-separated), one
    warn-text per message: PS3.18 names the Warning header field, code 299, for the reasons
    a client is to read; the DICOM JSON body has no attribute for them. ASCII only, each text
    and the whole bounded (the rest are counted, and in the audit row)."""
    values, length = [], 0
    for index, message in enumerate(messages):
        text = re.sub(r"\s+", " ", message.encode("ascii", "replace").decode())
        text = "".join(ch for ch in text if " " <= ch <= "~")
        if len(text) > WARNING_TEXT_CHARS:
            text = text[:WARNING_TEXT_CHARS - 3] + "..."
        value = '299 {} "{}"'.format(agent, text.replace("\\", "\\\\").replace('"', '\\"'))
        if length + len(value) > WARNING_HEADER_CHARS:
            values.append(f'299 {agent} "... and {len(messages) - index} more refused parts."')
            break
        values.append(value)
        length += len(value) + 2
    return ", ".join(values)


class MultipartRelatedParser(BaseParser):
    """Names the request media type (for content negotiation and the schema). The view reads
    the stream itself (``read_parts``): this parser is never asked to parse."""

    media_type = MULTIPART_RELATED

    def parse(self, stream, media_type=None, parser_context=None):  # pragma: no cover
        raise ParseError("The STOW-RS view reads its body with webapp.api.dicomweb.read_parts.")


class DicomJSONRenderer(JSONRenderer):
    media_type = "application/dicom+json"
    format = "dcmjson"
