"""The DICOM listener: a pynetdicom Storage and Verification SCP. It accepts associations only
from registered nodes that may send (``services.nodes.sending_node``; anything else is rejected
at association time and audited), answers C-ECHO, and stores each C-STORE through
``services.ingest.receive_instance``, which commits the image and queues its job before the
response goes out. It never waits for inference.

pynetdicom runs each association in a thread of its own; each thread has its own database
connection, closed when the association ends."""

from __future__ import annotations

import logging
import ssl
import uuid

from django.conf import settings
from django.db import DatabaseError, close_old_connections, connection
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit,
                         JPEGExtended12Bit, JPEGLossless, JPEGLosslessSV1, RLELossless)

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.pacs.services.ingest import OUT_OF_RESOURCES, InstanceRefused, receive_instance
from webapp.pacs.services.nodes import sending_node

log = logging.getLogger(__name__)

# Every storage SOP class is accepted at negotiation, so that a CT or an MR sent by mistake gets
# a C-STORE failure with its reason ("only chest radiographs") instead of a bare rejected
# presentation context the PACS log does not explain. The transfer syntaxes are those the
# reader decodes (pydicom + pylibjpeg): uncompressed, JPEG baseline/extended/lossless, RLE.
TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGLosslessSV1,
                     JPEGLossless, JPEGBaseline8Bit, JPEGExtended12Bit, RLELossless]
ERROR_COMMENT_MAX = 64  # Error Comment (0000,0902) is LO

# A-ASSOCIATE-RJ: rejected permanent (1), by the service user (1), calling AE not recognised (3).
REJECT_PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED = 0x01, 0x01, 0x03


def handle_requested(event) -> None:
    requestor = event.assoc.requestor
    # The requestor's AE title is copied from its A-ASSOCIATE-RQ only after this event: read it there.
    calling, address = str(requestor.primitive.calling_ae_title).strip(), requestor.address
    try:
        node = sending_node(calling, address)
    except DatabaseError:
        node = None
        log.exception("could not check the association from %s at %s", calling, address)
    if node is None:
        log.warning("rejected an association from %r at %s: not a registered sending node",
                    calling, address)
        _audit_rejection(calling, address, str(requestor.primitive.called_ae_title))
        event.assoc.acse.send_reject(REJECT_PERMANENT, SERVICE_USER, CALLING_AE_NOT_RECOGNISED)
        return
    event.assoc.triage_node = node
    event.assoc.triage_id = uuid.uuid4().hex


def handle_echo(event) -> int:
    return 0x0000


def handle_store(event) -> Dataset | int:
    node = getattr(event.assoc, "triage_node", None)
    if node is None:  # cannot happen: the association was rejected
        return OUT_OF_RESOURCES
    try:
        data = event.encoded_dataset(include_meta=True)
        inbound, new = receive_instance(node, data, event.assoc.triage_id,
                                        event.assoc.requestor.address)
    except InstanceRefused as refused:
        return _failure(refused.status, refused.reason)
    except DatabaseError as exc:
        # Nothing was stored (the transaction rolled back): the sender keeps the instance and
        # sends it again; "out of resources" tells it that trying later may work.
        log.warning("could not store an instance from %s: database unavailable (%s)", node, exc)
        close_old_connections()
        return _failure(OUT_OF_RESOURCES, "The service cannot store it now; send it again later.")
    log.info("%s an instance from %s as image %s of case %s",
             "stored" if new else "already had", node, inbound.image_id, inbound.image.case_id)
    return 0x0000


def handle_closed(event) -> None:
    connection.close()  # this association's thread is done with its connection


def _failure(status: int, reason: str) -> Dataset:
    response = Dataset()
    response.Status = status
    response.ErrorComment = reason[:ERROR_COMMENT_MAX]
    return response


def _audit_rejection(calling: str, address: str, called: str) -> None:
    try:
        audit.record(None, Action.DICOM_REFUSED, None, address, detail={
            "calling_ae_title": calling, "called_ae_title": called.strip(),
            "reason": "not a registered sending node"})
    except DatabaseError:
        log.exception("could not audit the rejected association")


HANDLERS = [
    (evt.EVT_REQUESTED, handle_requested),
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_STORE, handle_store),
    (evt.EVT_CONN_CLOSE, handle_closed),
]


def make_ae(ae_title: str | None = None) -> AE:
    ae = AE(ae_title=ae_title or settings.DICOM_AE_TITLE)
    ae.add_supported_context(Verification)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, TRANSFER_SYNTAXES)
    ae.network_timeout = settings.DICOM_NETWORK_TIMEOUT_S
    ae.acse_timeout = settings.DICOM_NETWORK_TIMEOUT_S
    ae.dimse_timeout = settings.DICOM_NETWORK_TIMEOUT_S
    ae.maximum_associations = 16
    return ae


def tls_context() -> ssl.SSLContext | None:
    """TLS when a certificate and key are set; the node's certificate is checked (mutual TLS)
    when a CA file is set too (PS3.15 B.1, the basic TLS secure transport profile)."""
    if not (settings.DICOM_TLS_CERT and settings.DICOM_TLS_KEY):
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH,
                                         cafile=settings.DICOM_TLS_CA or None)
    context.load_cert_chain(settings.DICOM_TLS_CERT, settings.DICOM_TLS_KEY)
    context.verify_mode = ssl.CERT_REQUIRED if settings.DICOM_TLS_CA else ssl.CERT_NONE
    return context


def serve(address: str | None = None, port: int | None = None, ae_title: str | None = None,
          block: bool = True):
    """Run the listener (in the foreground when ``block``; else returns the server)."""
    ae = make_ae(ae_title)
    bind = (address or settings.DICOM_BIND_ADDRESS, port or settings.DICOM_PORT)
    context = tls_context()
    log.info("DICOM listener %s on %s:%s%s", ae.ae_title, *bind, " (TLS)" if context else "")
    return ae.start_server(bind, block=block, evt_handlers=HANDLERS,
                           ssl_context=context)
