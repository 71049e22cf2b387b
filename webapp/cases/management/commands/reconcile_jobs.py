"""``python manage.py reconcile_jobs [--every SECONDS]``: send again the jobs the queue lost.

Once, or forever every SECONDS (a small long-running service next to the workers; see
webapp.cases.services.reconcile). A database or broker outage during one round is logged and
the next round tries again.

It also applies the retention policy (webapp.cases.services.retention) every RETENTION_EVERY_S
while RETENTION_DAYS is set: the reconciler already runs everywhere as one long-lived service
(docker-compose, systemd, Kubernetes, scripts/run), so no Celery beat process is needed."""

import logging
import time
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from webapp.cases.services import retention
from webapp.cases.services.reconcile import reconcile_jobs
from webapp.alerts.reconcile import reconcile_alerts
from webapp.pacs.services.reconcile import reconcile_deliveries

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Send again jobs that stayed queued (or running) too long: the database is the truth."

    def add_arguments(self, parser):
        parser.add_argument("--every", type=float, default=0,
                            help="repeat every SECONDS (default: run once)")
        parser.add_argument("--queued-after", type=float, default=None,
                            help="seconds a job may wait after its last dispatch "
                                 "(default RECONCILE_QUEUED_AFTER_S)")
        parser.add_argument("--running-after", type=float, default=None,
                            help="seconds after which a running job's run is presumed dead "
                                 "(default: hard time limit + RECONCILE_RUNNING_GRACE_S)")

    def handle(self, *args, every, queued_after, running_after, **options):
        kwargs = {}
        if queued_after is not None:
            kwargs["queued_after"] = timedelta(seconds=queued_after)
        if running_after is not None:
            kwargs["running_after"] = timedelta(seconds=running_after)
        retention_due = 0.0  # time.monotonic() of the next retention round
        while True:
            try:
                report = reconcile_jobs(**kwargs)
                deliveries = reconcile_deliveries()  # results owed to PACS nodes (webapp.pacs)
                alerts = reconcile_alerts()  # review-first films whose alerts were never made
                self.stdout.write(f"resent {len(report.resent_queued)} queued, "
                                  f"{len(report.resent_running)} running job(s)"
                                  + (f"; {len(report.send_failed)} not sent" if report.send_failed
                                     else "")
                                  + (f"; sent {len(deliveries)} PACS deliveries" if deliveries
                                     else "")
                                  + (f"; made {len(alerts)} missed alert(s)" if alerts else ""))
                self.stdout.flush()
            except Exception as exc:  # database down: try again next round
                if not every:
                    raise
                log.warning("reconcile round failed (%s); retrying in %s s", type(exc).__name__, every)
                connection.close()
            if time.monotonic() >= retention_due:
                retention_due = time.monotonic() + self.retention_round(every)
            if not every:
                return
            close_old_connections()
            time.sleep(every)

    def retention_round(self, every: float) -> float:
        """Apply the retention policy; the seconds until the next round. A failure is logged
        (ids and type only) and tried again next round; the job reconciling goes on."""
        try:
            report, wait = retention.scheduled_round()
        except Exception as exc:
            if not every:
                raise
            log.warning("retention round failed (%s); retrying next round", type(exc).__name__)
            connection.close()
            return 0.0
        if report is not None and (report.deleted or report.failed):
            self.stdout.write(f"retention: deleted {len(report.deleted)} case(s) older than "
                              f"{report.days} days"
                              + (f"; {len(report.failed)} failed" if report.failed else ""))
            self.stdout.flush()
        return wait
