"""``python manage.py reconcile_jobs [--every SECONDS]``: send again the jobs the queue lost.

Once, or forever every SECONDS (a small long-running service next to the workers; see
webapp.cases.services.reconcile). A database or broker outage during one round is logged and
the next round tries again."""

import logging
import time
from datetime import timedelta

from django.core.management.base import BaseCommand
from django.db import close_old_connections, connection

from webapp.cases.services.reconcile import reconcile_jobs
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
        while True:
            try:
                report = reconcile_jobs(**kwargs)
                deliveries = reconcile_deliveries()  # results owed to PACS nodes (webapp.pacs)
                self.stdout.write(f"resent {len(report.resent_queued)} queued, "
                                  f"{len(report.resent_running)} running job(s)"
                                  + (f"; {len(report.send_failed)} not sent" if report.send_failed
                                     else "")
                                  + (f"; sent {len(deliveries)} PACS deliveries" if deliveries
                                     else ""))
                self.stdout.flush()
            except Exception as exc:  # database down: try again next round
                if not every:
                    raise
                log.warning("reconcile round failed (%s); retrying in %s s", type(exc).__name__, every)
                connection.close()
            if not every:
                return
            close_old_connections()
            time.sleep(every)
