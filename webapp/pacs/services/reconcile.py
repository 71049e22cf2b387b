"""The reconciler's share for deliveries (run by ``manage.py reconcile_jobs`` with the jobs'):
a delivery whose message the broker lost, or whose sender died mid-send, is sent again; a case
whose last job finished without scheduling its delivery gets one. Sending again is safe
(guarded claims, stable UIDs)."""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings

from webapp.pacs.services.delivery import (dispatch_delivery, schedule_delivery,
                                           stale_deliveries, undelivered_finished_cases)

log = logging.getLogger(__name__)


def reconcile_deliveries(older_than: timedelta | None = None) -> list[int]:
    """Returns the ids of the deliveries sent (again)."""
    if older_than is None:
        # Longer than the longest backoff, or a delivery waiting for its retry is sent twice
        # (harmless, but noisy).
        older_than = timedelta(seconds=max(settings.RECONCILE_QUEUED_AFTER_S,
                                           2 * settings.DICOM_DELIVERY_BACKOFF_MAX_S))
    sent = []
    for case_id in undelivered_finished_cases():
        delivery = schedule_delivery(case_id)
        if delivery is not None:
            sent.append(delivery.pk)
    for delivery_id in stale_deliveries(older_than):
        try:
            dispatch_delivery(delivery_id)
        except Exception:  # broker down: the next round tries again
            log.warning("reconciler could not send delivery %s; will retry", delivery_id)
        else:
            sent.append(delivery_id)
    if sent:
        log.info("reconciler sent %d deliveries: %s", len(sent), ", ".join(map(str, sent)))
    return sent
