"""/api/v1/dicomweb/studies/ (and .../studies/{StudyInstanceUID}/): DICOMweb STOW-RS, the
Studies Store transaction of PS3.18 section 10.5, for archives and viewers that push over HTTP.

Authentication: an API token only (``Authorization: Token <key>``); a browser session is refused
with 401 and a JSON body that says so. STOW-RS clients are machines (a PACS, a gateway, a
viewer's server side) that hold a token; a session would need a CSRF token, which Django reads
from the form body this multipart/related body is not, so it could only ever fail (a 400), and
accepting sessions would only widen what a cross-site page could try. Throttling and the checks
on each file are those of the REST API's uploads; each part goes through
``uploads.validate_upload`` on its own ("part 3"), so one bad instance fails alone. The parts
that pass are grouped by their StudyInstanceUID (as sent, before de-identification), and each
study becomes one case (``uploads.store_case``) in the user's default team, with its queued
jobs and an audit row naming the call; the refused parts get a ``dicom_refused`` audit row.

The answer (PS3.18 10.5.3) is a Store Instances Response in DICOM JSON:

- 200: every instance stored; 202: some stored, some failed; 409: none stored (each failure in
  the Failed SOP Sequence); 400: a body that is not well-formed multipart/related (or a target
  study that is not a UID); 413: over MAX_UPLOAD_FILES parts, or over MAX_UPLOAD_FILES x
  MAX_UPLOAD_FILE_BYTES in all; 415: not multipart/related of application/dicom. Whole-request
  errors (400, 413, 415, 401, ...) have the API's JSON error body.
- ReferencedSOPSequence (0008,1199): per stored instance its SOP Class and Instance UIDs (as
  sent) and RetrieveURL (0008,1190): the API URL of its case. The top-level RetrieveURL is that
  case's URL when all stored instances went into one case; empty otherwise.
- FailedSOPSequence (0008,1198): per refused instance its UIDs where readable and a Failure
  Reason (0008,1197) of PS3.18 table I.2-2: 0xA700 out of resources (the part is over
  MAX_UPLOAD_FILE_BYTES, or storage failed for lack of space); 0x0122 SOP Class not supported
  (not a CR/DX radiograph, e.g. a CT); 0xA900 data set does not match SOP Class (a lateral or
  other non-frontal view; a missing Study/SOP Instance or SOP Class UID; on
  .../studies/{StudyInstanceUID}/, an instance of another study: the standard has no code of
  its own for that mismatch, which falls in A9xx); 0xC000 cannot understand (not
  application/dicom, not a DICOM file, truncated or undecodable, or not de-identifiable);
  0x0110 processing failure (storage failed otherwise).
- Why, for a person: the DICOM JSON response has no standard text attribute for a failure, so
  each refused part's reason (the upload check's message, e.g. "part 3: This is a lateral
  view ...") goes into the HTTP ``Warning`` header field, code 299, as PS3.18 (8.4 and its
  transactions) uses it: ``Warning: 299 host "part 3: ..."``, comma-separated.

Retries: STOW-RS carries no Idempotency-Key; the same instances sent twice make two cases.
"""

from __future__ import annotations

import errno
import logging

from django.conf import settings
from django.contrib.auth import SESSION_KEY
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse
from django.utils.decorators import method_decorator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import status as http
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated, ParseError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings

from ml.core.errors import DecodeLimitExceeded, NotChestRadiograph
from webapp.api import dicomweb
from webapp.api.errors import errors
from webapp.api.views.base import ApiView
from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.services.projection import NotFrontalView
from webapp.cases.services.teams import submission_team
from webapp.cases.services.uploads import UploadRejected, store_case, validate_upload

log = logging.getLogger(__name__)

INTERFACE = "DICOMweb STOW-RS (PS3.18 10.5)"
SESSION_REFUSED = ("STOW-RS takes an API token only (Authorization: Token <key>), not a browser "
                   "session; create one on your API tokens page, or ask an administrator.")


def _attribute(vr: str, value: dict) -> dict:
    return {"type": "object", "required": ["vr"],
            "properties": {"vr": {"type": "string", "enum": [vr]}, "Value": value}}


_UID = _attribute("UI", {"type": "array", "items": {"type": "string"}})
_URL = _attribute("UR", {"type": "array", "items": {"type": "string"}})
STORE_RESPONSE_SCHEMA = {
    "type": "object",
    "description": "Store Instances Response (PS3.18 10.5.3), DICOM JSON (PS3.18 annex F): "
                   "00081190 RetrieveURL, 00081199 ReferencedSOPSequence (00081150 class, "
                   "00081155 instance, 00081190 the case's API URL), 00081198 FailedSOPSequence "
                   "(00081150, 00081155 where readable, 00081197 FailureReason).",
    "properties": {
        "00081190": _URL,
        "00081199": _attribute("SQ", {"type": "array", "items": {
            "type": "object", "properties": {"00081150": _UID, "00081155": _UID, "00081190": _URL}}}),
        "00081198": _attribute("SQ", {"type": "array", "items": {
            "type": "object", "properties": {
                "00081150": _UID, "00081155": _UID,
                "00081197": _attribute("US", {"type": "array", "items": {"type": "integer"}})}}}),
    },
}
_MEDIA_TYPES = ("application/dicom+json", "application/json")


def _store_responses(code: int, description: str) -> dict:
    return {(code, media_type): OpenApiResponse(STORE_RESPONSE_SCHEMA, description=description)
            for media_type in _MEDIA_TYPES}


STORE_SCHEMA = dict(
    summary="DICOMweb STOW-RS: store instances (PS3.18 10.5)",
    description=(
        'One DICOM PS3.10 file per part of a multipart/related; type="application/dicom" body '
        "(at most MAX_UPLOAD_FILES parts of MAX_UPLOAD_FILE_BYTES each). Each instance is "
        "checked like an upload; the instances that pass are stored, one case per study "
        "(StudyInstanceUID) in your default team. On /studies/{study_uid}/ an instance of "
        "another study fails. 200: all stored; 202: some failed; 409: none stored. Failed "
        "instances are in FailedSOPSequence (00081198) with a FailureReason (00081197): 0xA700 "
        "too large or out of storage, 0x0122 not a CR/DX radiograph, 0xA900 not a frontal view, "
        "UIDs missing or another study, 0xC000 not readable DICOM, 0x0110 processing failure; "
        "the reasons in words are in the Warning header. Authenticate with an API token "
        "(Authorization: Token <key>): a browser session is refused with 401."),
    request={dicomweb.MULTIPART_RELATED: OpenApiTypes.BINARY},
    parameters=[OpenApiParameter(
        "Warning", str, OpenApiParameter.HEADER, response=[202, 409],
        description='Why each refused part was refused: 299 <host> "part N: reason", '
                    "comma-separated.")],
    responses={
        **_store_responses(200, "Every instance stored."),
        **_store_responses(202, "Some instances stored; the others are in FailedSOPSequence."),
        **_store_responses(409, "No instance stored; each is in FailedSOPSequence."),
        # Errors of the whole request: the API's JSON error body, whatever was accepted.
        **{(code, "application/json"): response
           for code, response in errors(400, 406, 413, 415).items()},
    },
)


# Not one transaction per request: the parts are read and checked outside any transaction (on
# SQLite an open one holds the write lock every other request waits for); each study's case is
# stored in a short transaction of its own (uploads.store_case; issue 21).
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class StudiesStore(ApiView):
    """POST multipart/related; type="application/dicom" (one DICOM PS3.10 file per part)."""

    parser_classes = [dicomweb.MultipartRelatedParser]
    renderer_classes = [dicomweb.DicomJSONRenderer, JSONRenderer]
    # The API's authentication less the session (see the module's docstring): token only.
    authentication_classes = [auth for auth in api_settings.DEFAULT_AUTHENTICATION_CLASSES
                              if not issubclass(auth, SessionAuthentication)]

    def permission_denied(self, request, message=None, code=None):
        if request.successful_authenticator is None and SESSION_KEY in request.session:
            raise NotAuthenticated(SESSION_REFUSED)
        super().permission_denied(request, message, code)

    def finalize_response(self, request, response, *args, **kwargs):
        if isinstance(response, Response) and not getattr(response, "stow_rs", False):
            # Errors of the whole request have the API's JSON error body.
            request.accepted_renderer, request.accepted_media_type = JSONRenderer(), "application/json"
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(operation_id="dicomweb_studies_store", **STORE_SCHEMA)
    def post(self, request, study_uid=None):
        if study_uid is not None and not dicomweb.is_uid(study_uid):
            raise ParseError("The study in the URL is not a DICOM UID.")
        parts = dicomweb.read_parts(request)
        failed, accepted = [], []  # dicts of _check_part
        for part in parts:
            outcome = _check_part(part, study_uid)
            (failed if "reason" in outcome else accepted).append(outcome)

        studies: dict[str, list[dict]] = {}
        for outcome in accepted:
            studies.setdefault(outcome["study"], []).append(outcome)
        team = submission_team(request.user, None) if studies else None
        stored, cases = [], []
        for study, outcomes in studies.items():
            try:
                case = store_case(
                    request.user, [o["upload"] for o in outcomes], audit.client_address(request),
                    team=team, audit_detail=self.audit_detail(
                        interface=INTERFACE, parts=[o["part"] for o in outcomes]))
            except OSError as exc:  # the files could not be written: these instances fail
                log.exception("STOW-RS: storing a study of %d instances failed", len(outcomes))
                full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
                for o in outcomes:
                    failed.append({**o, "reason": dicomweb.OUT_OF_RESOURCES if full
                                   else dicomweb.PROCESSING_FAILURE,
                                   "message": f"part {o['part']}: the instance could not be "
                                              "stored (the server's storage failed); try again."})
                continue
            url = request.build_absolute_uri(reverse("api:case-detail", kwargs={"case_id": case.pk}))
            cases.append(url)
            stored.extend({**o, "url": url} for o in outcomes)

        failed.sort(key=lambda o: o["part"])  # both sequences in the order of the parts
        stored.sort(key=lambda o: o["part"])
        if failed:
            audit.record(request.user, Action.DICOM_REFUSED, None, audit.client_address(request),
                         detail=self.audit_detail(interface=INTERFACE, stored=len(stored), refused=[
                             {"part": o["part"], "failure_reason": f"0x{o['reason']:04X}",
                              "reason": o["message"]} for o in failed]))
        body = dicomweb.store_response(cases[0] if len(cases) == 1 else None, stored, failed)
        code = (http.HTTP_200_OK if not failed else
                http.HTTP_202_ACCEPTED if stored else http.HTTP_409_CONFLICT)
        headers = {}
        if failed:
            headers["Warning"] = dicomweb.warning_header(request.get_host(),
                                                         [o["message"] for o in failed])
        response = Response(body, status=code, headers=headers)
        response.stow_rs = True
        return response


@extend_schema_view(post=extend_schema(
    operation_id="dicomweb_study_store",
    summary="DICOMweb STOW-RS: store instances of one study (PS3.18 10.5)",
    parameters=[OpenApiParameter("study_uid", str, OpenApiParameter.PATH, description=(
        "The StudyInstanceUID: instances of any other study fail (0xA900)."))]))
class StudyStore(StudiesStore):
    """POST to .../studies/{StudyInstanceUID}/: instances of another study fail."""


@extend_schema_view(post=extend_schema(exclude=True))
class StudiesStoreAlias(StudiesStore):
    """The same, without the trailing slash: DICOMweb clients append "/studies" to a base URL
    and cannot follow a redirect of a POST. Left out of the schema (one operation, one path)."""


def _failure(part, uids, reason: int, message: str) -> dict:
    return {"part": part.number, **uids, "reason": reason, "message": message}


def _check_part(part: dicomweb.Part, target_study: str | None) -> dict:
    """One part: {"part", "sop_class", "sop_instance", "study", "upload"} when it passed, with
    "reason" and "message" (and the UIDs that could be read) when it failed."""
    if part.content_type != dicomweb.DICOM:
        return _failure(part, {}, dicomweb.CANNOT_UNDERSTAND,
                        f"{part.name}: the part is {part.content_type}, not {dicomweb.DICOM}.")
    if not part.data:
        return _failure(part, {}, dicomweb.CANNOT_UNDERSTAND, f"{part.name}: the part is empty.")
    uids = dicomweb.header_uids(part.data)
    if len(part.data) > settings.MAX_UPLOAD_FILE_BYTES:
        limit = settings.MAX_UPLOAD_FILE_BYTES // 2**20
        return _failure(part, uids, dicomweb.OUT_OF_RESOURCES,
                        f"{part.name}: the file is larger than the limit of {limit} MB.")
    if part.data[128:132] != b"DICM":
        return _failure(part, uids, dicomweb.CANNOT_UNDERSTAND,
                        f"{part.name}: not a DICOM file (PS3.10: no DICM prefix at byte 128).")
    if target_study is not None and uids.get("study") and uids["study"] != target_study:
        return _failure(part, uids, dicomweb.DOES_NOT_MATCH_SOP_CLASS,
                        f"{part.name}: the instance belongs to another study than the one in "
                        "the URL.")
    try:
        upload = validate_upload(ContentFile(part.data, name=part.name))
    except UploadRejected as exc:
        return _failure(part, uids, _reason(exc.__cause__), "; ".join(exc.messages))
    metadata = upload.xray.metadata
    found = {"sop_class": uids.get("sop_class"), "sop_instance": metadata.get("SOPInstanceUID"),
             "study": metadata.get("StudyInstanceUID")}
    missing = [name for name, key in (("StudyInstanceUID", "study"),
                                      ("SOPInstanceUID", "sop_instance"),
                                      ("SOPClassUID", "sop_class")) if not found[key]]
    if missing:
        return _failure(part, uids, dicomweb.DOES_NOT_MATCH_SOP_CLASS,
                        f"{part.name}: the instance has no {' or '.join(missing)}.")
    if target_study is not None and found["study"] != target_study:
        return _failure(part, found, dicomweb.DOES_NOT_MATCH_SOP_CLASS,
                        f"{part.name}: the instance belongs to another study than the one in "
                        "the URL.")
    return {"part": part.number, **found, "upload": upload}


def _reason(cause) -> int:
    """The Failure Reason for a part that ``validate_upload`` refused, from why it did."""
    if isinstance(cause, NotFrontalView):
        return dicomweb.DOES_NOT_MATCH_SOP_CLASS
    if isinstance(cause, NotChestRadiograph):  # another modality: a CT is another SOP Class
        return dicomweb.SOP_CLASS_NOT_SUPPORTED
    if isinstance(cause, DecodeLimitExceeded):  # more memory or time than an X-ray needs
        return dicomweb.OUT_OF_RESOURCES
    return dicomweb.CANNOT_UNDERSTAND
