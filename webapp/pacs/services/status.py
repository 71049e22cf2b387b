"""What the case page says about a case that came over DICOM: the node it came from, and for
each destination whether and when its results reached the PACS, or why not."""

from __future__ import annotations

from dataclasses import dataclass, field

from webapp.pacs.models import Delivery, InboundImage


@dataclass
class PacsStatus:
    source: str  # the sending node, as AE title @ host
    received_at: object
    deliveries: list = field(default_factory=list)
    waiting_for_results: bool = False


def pacs_status(case) -> PacsStatus | None:
    inbound = (InboundImage.objects.filter(image__case=case).select_related("node")
               .order_by("received_at").first())
    if inbound is None:
        return None
    deliveries = list(Delivery.objects.filter(case=case).select_related("node"))
    destination = inbound.node.results_destination()
    return PacsStatus(
        source=str(inbound.node), received_at=inbound.received_at, deliveries=deliveries,
        waiting_for_results=not deliveries and destination is not None)



