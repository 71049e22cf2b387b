"""An instance received over DICOM becomes an image of a case, through the same checks and the
same storage as an upload (``cases.services.uploads``): the listener calls ``receive_instance``
once per C-STORE, and answers the sender only once the image (and its queued job) committed.

Instances of one study that one node sends together join one case: the same study, from the same
node, while the case is still open (its last instance arrived less than DICOM_STUDY_WINDOW_S
ago, it has room, and its results have not gone out)."""

from __future__ import annotations

import logging
from datetime import timedelta

import pydicom
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from ml.core.errors import DecodeLimitExceeded, NotChestRadiograph
from ml.core.limits import read_dicom_header
from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.models import Case
from webapp.cases.services.teams import submission_team
from webapp.cases.services.uploads import UploadRejected, add_images, store_case, validate_upload
from webapp.pacs.models import DicomNode, InboundImage
from webapp.pacs.services.identity import return_identity

log = logging.getLogger(__name__)

# C-STORE failure statuses (PS3.4 Table B.2-1): "Error: cannot understand" is the range
# C000-CFFF, "Refused: out of resources" A700-A7FF.
CANNOT_UNDERSTAND = 0xC000
NOT_A_CHEST_RADIOGRAPH = 0xC001
OUT_OF_RESOURCES = 0xA700


class InstanceRefused(Exception):
    """The instance is not stored; ``status`` goes in the C-STORE response, ``reason`` in the
    log, the audit trail and (cut to 64 characters) the response's Error Comment."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status, self.reason = status, reason


def instance_name(node: DicomNode, header: pydicom.Dataset) -> str:
    """A display name that carries no patient data: where it came from and what it is."""
    modality = str(header.get("Modality", "") or "DICOM")
    series, number = header.get("SeriesNumber", ""), header.get("InstanceNumber", "")
    return f"{node.ae_title} {modality} {series or '-'}-{number or '-'}.dcm"


def receive_instance(node: DicomNode, data: bytes, association: str,
                     address: str | None = None) -> tuple[InboundImage, bool]:
    """Store one received instance (the file's bytes, as the sender encoded it); returns its
    row and whether it is new (False: this node sent this instance before, and it is kept
    once). Raises InstanceRefused with the C-STORE status and the reason."""
    try:
        header = read_dicom_header(data)  # a Deflated one: a bounded part inflated
    except Exception as exc:  # pydicom raises many types on a damaged stream
        raise _refused(node, address, CANNOT_UNDERSTAND,
                       f"The DICOM data set cannot be read ({exc}).") from exc
    sop_uid = str(header.get("SOPInstanceUID", "") or "")
    earlier = InboundImage.objects.filter(node=node, sop_instance_uid=sop_uid).first() \
        if sop_uid else None
    if earlier is not None:
        return earlier, False
    try:
        validated = validate_upload(ContentFile(data, name=instance_name(node, header)))
    except UploadRejected as exc:
        # The check's own words, without the display name uploads put in front of them.
        reason = str(exc.__cause__) if exc.__cause__ is not None else "; ".join(exc.messages)
        raise _refused(node, address, refusal_status(exc), reason) from exc
    study_uid = str(header.get("StudyInstanceUID", "") or "")
    identity = return_identity(header)
    detail = {"via": "dicom", "node": str(node), "association": association}
    with transaction.atomic():
        # One case per study and node: the node's row is the lock that keeps two associations
        # sending the same study at once from opening two cases.
        DicomNode.objects.select_for_update().get(pk=node.pk)
        case = open_case(node, study_uid, association)
        if case is None:
            team = submission_team(node.owner, node.team) if node.team_id \
                else submission_team(node.owner)
            case = store_case(node.owner, [validated], address, team=team, audit_detail=detail)
            image = case.images.get()
        else:
            image, = add_images(case, [validated], node.owner, address, audit_detail=detail)
        return InboundImage.objects.create(
            image=image, node=node, association=association, study_instance_uid=study_uid,
            sop_instance_uid=sop_uid, identity=identity), True


def refusal_status(exc: UploadRejected) -> int:
    """The C-STORE status for an upload check's refusal, by what refused it."""
    if isinstance(exc.__cause__, NotChestRadiograph):  # a CT, a lateral film
        return NOT_A_CHEST_RADIOGRAPH
    if exc.__cause__ is None or isinstance(exc.__cause__, DecodeLimitExceeded):
        return OUT_OF_RESOURCES  # the size limit (reads no content), or the decoding's limits
    return CANNOT_UNDERSTAND


def open_case(node: DicomNode, study_uid: str, association: str) -> Case | None:
    """The case this node's instance of ``study_uid`` joins, or None for a new case."""
    if not study_uid:
        return None
    since = timezone.now() - timedelta(seconds=settings.DICOM_STUDY_WINDOW_S)
    candidates = (Case.objects.filter(images__inbound__node=node,
                                      images__inbound__study_instance_uid=study_uid,
                                      deliveries__isnull=True)
                  .annotate(last=Max("images__inbound__received_at"))
                  .order_by("-last"))
    for case in candidates[:1]:
        same_association = case.images.filter(inbound__association=association).exists()
        if (same_association or case.last >= since) \
                and case.images.count() < settings.MAX_UPLOAD_FILES:
            return case
    return None


def _refused(node: DicomNode, address: str | None, status: int, reason: str) -> InstanceRefused:
    log.info("refused an instance from %s: %s", node, reason)  # no PHI: the reason names none
    with transaction.atomic():
        audit.record(node.owner, Action.DICOM_REFUSED, None, address,
                     detail={"node": str(node), "status": f"0x{status:04X}", "reason": reason})
    return InstanceRefused(status, reason)
