"""manage.py export_feedback: every clinician's reviews as CSV (webapp.reviews.export), or with
--out-dir the training folder of images, masks, labels and a manifest that ml.train --feedback and
ml.evaluate read (webapp.reviews.feedback_folder; docs/develop/feedback-export.md)."""

import datetime as dt
import getpass

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.reviews.export import write_feedback
from webapp.reviews.feedback_folder import ExportRefused, write_folder


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return ""


def _date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(f"--since must be a date, YYYY-MM-DD, not {value!r}") from exc


class Command(BaseCommand):
    help = ("ADMINISTRATORS ONLY: writes every clinician's feedback, with their comments, whoever "
            "they are (no per-user access check applies to a command on the server). One CSV row "
            "per review: image_id, case_id, file, source_format, model_version, probability, "
            "positive, true_label, verdict, comment, reviewer, reviewed_at; readable by "
            "ml.training.datasets.load_feedback and python -m ml.evaluate --layout feedback. "
            "With --out-dir DIR instead: the training folder (images/, masks/, labels.csv, "
            "manifest.json) of every film with a true label or a corrected outline, for "
            "ml.train --feedback DIR and ml.evaluate. The export is recorded in the audit log.")

    def add_arguments(self, parser):
        parser.add_argument("--out", help="the CSV file to write (default: standard output)")
        parser.add_argument("--out-dir", help="write the training folder here instead of the CSV "
                                              "(a new or empty folder): images/, masks/, "
                                              "labels.csv, manifest.json")
        parser.add_argument("--since", type=str, help="only reviews given on or after this date, "
                                                      "YYYY-MM-DD (the site's time zone)")
        parser.add_argument("--absolute-paths", action="store_true",
                            help="write each file's absolute path, not the path relative to "
                                 "PRIVATE_MEDIA_ROOT")

    def handle(self, *args, out=None, out_dir=None, since=None, absolute_paths=False, **options):
        since = _date(since) if since else None
        if out_dir:
            if out or absolute_paths:
                raise CommandError("--out-dir writes a folder: give it without --out or "
                                   "--absolute-paths")
            return self._folder(out_dir, since)
        # One transaction: the rows are one consistent snapshot, and the audit row goes with them.
        with transaction.atomic():
            if out:
                with open(out, "w", newline="", encoding="utf-8") as handle:
                    count = write_feedback(handle, since, absolute_paths)
            else:
                count = write_feedback(self.stdout, since, absolute_paths)
            audit.record(None, Action.EXPORT, None, None, detail={
                "what": "feedback", "command": "export_feedback", "rows": count,
                "since": since.isoformat() if since else None, "out": out or "-",
                "os_user": _os_user()})
        if out:
            self.stderr.write(f"Wrote {count} reviews to {out}")

    def _folder(self, out_dir: str, since):
        with transaction.atomic():
            try:
                manifest = write_folder(out_dir, since)
            except ExportRefused as exc:
                raise CommandError(str(exc)) from exc
            except OSError as exc:
                # A folder that cannot be written, or a stored file gone missing.
                raise CommandError(f"The export stopped: {exc}") from exc
            audit.record(None, Action.EXPORT, None, None, detail={
                "what": "feedback-folder", "command": "export_feedback",
                "counts": manifest["counts"], "since": manifest["since"], "out": out_dir,
                "os_user": _os_user()})
        counts = manifest["counts"]
        self.stderr.write(f"Wrote {counts['images']} films ({counts['with_mask']} with a mask, "
                          f"{counts['label_only']} label only) to {out_dir}")
