"""The results of a case as the PACS receives them: for each analysed image, a Secondary Capture
of the overlay, the Segmentation and the Structured Report, built (by ``cases.services.results``
and ``structured_report``) on the stored source with its original identity put back, so that the
PACS files them in the original study, in new series, next to the original image.

UIDs are derived from the image, its result's run and the kind, never drawn at random: a
delivery sent again (a retry, a task delivered twice under acks_late) sends the same instances,
which a PACS keeps once."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass

import numpy as np
import pydicom
from PIL import Image

from webapp.cases.models import CaseImage
from webapp.cases.services import dicom_attributes, files, results, structured_report
from webapp.pacs.services.identity import reidentified

UID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:pneumothorax-triage:pacs-results")


@dataclass(frozen=True)
class Outbound:
    image_id: str
    kind: str  # "sc" | "seg" | "sr"
    dataset: pydicom.Dataset

    @property
    def sop_instance_uid(self) -> str:
        return str(self.dataset.SOPInstanceUID)


def stable_uid(*parts) -> str:
    """A UUID-derived UID (2.25, PS3.5 B.2) of a name-based UUID (version 5) of ``parts``: the
    same parts give the same UID. (pydicom's generate_uid ignores its entropy sources when asked
    for a 2.25 UID, and draws a random one.)"""
    return f"2.25.{uuid.uuid5(UID_NAMESPACE, '/'.join(map(str, parts))).int}"


def image_results(image: CaseImage, identity: dict) -> list[Outbound]:
    """SC, SEG and SR for one analysed DICOM image (its job done)."""
    job = image.job
    original = files.read(image.original.name)
    source = dicom_attributes.with_identity_elements(
        reidentified(pydicom.dcmread(io.BytesIO(original)), identity))
    mask = np.asarray(Image.open(io.BytesIO(files.read(job.mask.name))).convert("L")) > 0

    def uids(kind):
        return {"series_instance_uid": stable_uid(image.case_id, job.run_token, kind, "series"),
                "sop_instance_uid": stable_uid(image.pk, job.run_token, kind)}

    seg = results.build_segmentation(image, source, mask, **uids("seg"))
    sc = results.build_secondary_capture(image, source, mask, original, **uids("sc"))
    sr = structured_report.build_structured_report(image, source, evidence=[seg], **uids("sr"))
    return [Outbound(str(image.pk), "sc", sc), Outbound(str(image.pk), "seg", seg),
            Outbound(str(image.pk), "sr", sr)]
