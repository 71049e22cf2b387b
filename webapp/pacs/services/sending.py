"""Sending DICOM instances to a node by C-STORE (pynetdicom, as a Storage SCU)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from pynetdicom import AE
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from webapp.pacs.models import DicomNode


class PacsUnavailable(Exception):
    """The node cannot be reached or refused the association: try again later."""


class PacsRefused(Exception):
    """The node refused an instance for good (a failure status that retrying will not change)."""


@dataclass(frozen=True)
class StoreOutcome:
    sop_instance_uid: str
    status: int


def _transient(status: int) -> bool:
    # "Refused: out of resources" (A7xx) may pass later; so may a lost response (no status).
    return (status & 0xFF00) == 0xA700


def send_instances(node: DicomNode, datasets: list, calling_ae_title: str | None = None) \
        -> list[StoreOutcome]:
    """C-STORE every dataset over one association. Raises PacsUnavailable (no association, a
    lost connection, an out-of-resources refusal) or PacsRefused (a permanent failure)."""
    ae = AE(ae_title=calling_ae_title or settings.DICOM_AE_TITLE)
    for sop_class in sorted({str(ds.SOPClassUID) for ds in datasets}):
        ae.add_requested_context(sop_class, [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
    ae.network_timeout = ae.acse_timeout = ae.dimse_timeout = settings.DICOM_NETWORK_TIMEOUT_S
    assoc = ae.associate(node.host, node.port, ae_title=node.ae_title)
    if not assoc.is_established:
        raise PacsUnavailable(f"No association with {node}"
                              f"{' (rejected)' if assoc.is_rejected else ''}.")
    outcomes = []
    try:
        for dataset in datasets:
            response = assoc.send_c_store(dataset)
            status = int(response.get("Status", -1)) if response else -1
            if status == -1:
                raise PacsUnavailable(f"{node} did not answer the C-STORE (connection lost).")
            if _transient(status):
                raise PacsUnavailable(f"{node} is out of resources (status 0x{status:04X}).")
            # Success is 0000; warnings (B000, B007, B006) are stored instances too.
            if status != 0x0000 and (status & 0xF000) != 0xB000:
                comment = str(response.get("ErrorComment", "") or "")
                raise PacsRefused(f"{node} refused a result (status 0x{status:04X}"
                                  f"{': ' + comment if comment else ''}).")
            outcomes.append(StoreOutcome(str(dataset.SOPInstanceUID), status))
    finally:
        if assoc.is_established:
            assoc.release()
    return outcomes
