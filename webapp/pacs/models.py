"""Registered DICOM nodes, what arrived from them, and the delivery of results back to them."""

from django.conf import settings
from django.db import models


class Direction(models.TextChoices):
    BOTH = "both", "Sends X-rays and receives results"
    SEND = "send", "Sends X-rays only"
    RECEIVE = "receive", "Receives results only"


class DicomNode(models.Model):
    """A PACS, router or modality the service talks to. An association is accepted only from a
    node whose AE title and host match and which may send; what it sends belongs to ``owner``
    (in ``team``, or the owner's first team); its results go to ``results_node`` or back to it."""

    name = models.CharField(max_length=100, blank=True, help_text="A description, for people.")
    ae_title = models.CharField("AE title", max_length=16)
    host = models.CharField(max_length=255, help_text="The address it connects from, and where "
                            "results are sent (an IP address or a host name).")
    port = models.PositiveIntegerField(default=104, help_text="Its own DICOM port (results).")
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.BOTH)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT,
                              related_name="dicom_nodes",
                              help_text="Owns the cases this node sends.")
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, null=True, blank=True,
                             related_name="dicom_nodes",
                             help_text="The cases' team (one of the owner's); blank: the "
                                       "owner's first team.")
    results_node = models.ForeignKey("self", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+",
                                     help_text="Where the results of what it sends go; blank: "
                                               "back to this node, if it receives.")
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["ae_title", "host"]
        constraints = [models.UniqueConstraint(fields=["ae_title", "host"],
                                               name="dicom_node_unique_ae_title_host")]

    def __str__(self):
        return f"{self.ae_title}@{self.host}:{self.port}"

    @property
    def sends(self) -> bool:
        return self.direction in (Direction.BOTH, Direction.SEND)

    @property
    def receives(self) -> bool:
        return self.direction in (Direction.BOTH, Direction.RECEIVE)

    def results_destination(self):
        """The node the results of this node's studies go to, or None."""
        if self.results_node_id:
            return self.results_node if self.results_node.enabled and self.results_node.receives \
                else None
        return self if self.receives else None


class InboundImage(models.Model):
    """An image of a case that arrived over DICOM: from which node, in which association, and
    the original identity the results need to be filed next to it in the PACS.

    The stored file is de-identified (its UIDs and patient module replaced); a result filed in
    the PACS under the de-identified identity would land in a new, empty patient. So the
    original patient and study attributes (``services.identity.RETURN_ATTRIBUTES``) are kept
    here, readable by the delivery only (never shown, never in the API), and erased once the
    results are delivered."""

    image = models.OneToOneField("cases.CaseImage", on_delete=models.CASCADE,
                                 related_name="inbound")
    node = models.ForeignKey(DicomNode, on_delete=models.PROTECT, related_name="inbound_images")
    association = models.CharField(max_length=64, db_index=True)
    study_instance_uid = models.CharField(max_length=64, db_index=True)  # the original
    # The original instance UID: a PACS sends an instance again (an operator's resend, a
    # routing rule that fires once more); what is already here is not stored twice.
    sop_instance_uid = models.CharField(max_length=64, db_index=True)
    identity = models.JSONField(default=dict, blank=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.image_id} from {self.node}"


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
    NOTHING = "nothing", "Nothing to send"


class Delivery(models.Model):
    """The results of one case to one node. Transitions only through services.delivery, each
    guarded by the state it expects (as jobs): a task delivered twice sends once."""

    case = models.ForeignKey("cases.Case", on_delete=models.CASCADE, related_name="deliveries")
    node = models.ForeignKey(DicomNode, on_delete=models.PROTECT, related_name="deliveries")
    status = models.CharField(max_length=16, choices=DeliveryStatus.choices,
                              default=DeliveryStatus.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)  # the last failure, shown on the case page
    run_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # What went out: [{"image": id, "kind": "sc"|"seg"|"sr", "sop_instance_uid": ..., "status": ...}]
    sent = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [models.UniqueConstraint(fields=["case", "node"],
                                               name="delivery_unique_case_node")]

    def __str__(self):
        return f"Delivery of {self.case_id} to {self.node} ({self.status})"
