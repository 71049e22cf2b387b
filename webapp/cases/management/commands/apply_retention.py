"""``python manage.py apply_retention [--dry-run] [--limit N]``: apply the retention policy now
(webapp.cases.services.retention), as the reconciler does every RETENTION_EVERY_S. It prints
counts and case ids only: no patient identifier, so its output may go in a ticket."""

from django.core.management.base import BaseCommand, CommandError

from webapp.cases.services.retention import RetentionMisconfigured, apply_retention


class Command(BaseCommand):
    help = ("Delete the cases older than RETENTION_DAYS (kept: work in flight, and cases "
            "awaiting review while RETENTION_KEEP_UNREVIEWED); --dry-run only lists them.")

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true",
                            help="list what would be deleted; delete nothing")
        parser.add_argument("--limit", type=int, default=None,
                            help="delete at most N cases, oldest first (default: all due)")

    def handle(self, *args, dry_run, limit, verbosity, **options):
        if limit is not None and limit < 1:
            raise CommandError("--limit must be 1 or more.")
        try:
            report = apply_retention(dry_run=dry_run, limit=limit)
        except RetentionMisconfigured as exc:
            raise CommandError(str(exc)) from None
        if report.days is None:
            self.stdout.write("RETENTION_DAYS is not set: every case is kept. Nothing to do.")
            return
        self.stdout.write(f"Retention: cases uploaded more than {report.days} days ago "
                          f"(before {report.cutoff:%Y-%m-%d %H:%M} UTC).")
        verb = "Would delete" if dry_run else "Deleted"
        self.stdout.write(f"{verb} {len(report.deleted)} case(s), {report.images} image(s)"
                          + (":" if report.deleted else "."))
        for case_id in report.deleted:
            self.stdout.write(f"  {case_id}")
        if report.more:
            self.stdout.write(f"More cases are due: the limit of {limit} was reached.")
        self._kept("with work in flight (a job queued or running, a PACS delivery not yet sent)",
                   report.kept_in_flight, verbosity)
        self._kept("awaiting review (RETENTION_KEEP_UNREVIEWED)", report.kept_unreviewed, verbosity)
        if report.failed:
            raise CommandError(f"{len(report.failed)} case(s) could not be deleted "
                               f"({', '.join(report.failed)}); see the log. Run again to retry.")

    def _kept(self, why: str, case_ids: list[str], verbosity: int) -> None:
        if not case_ids:
            return
        self.stdout.write(f"Kept {len(case_ids)} old case(s) {why}"
                          + (":" if verbosity > 1 else " (-v 2 lists them)."))
        if verbosity > 1:
            for case_id in case_ids:
                self.stdout.write(f"  {case_id}")
