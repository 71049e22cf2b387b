"""manage.py backup --out DIR: the database, the private media and the other data folders, from
one point in time, while the site runs (webapp.backups.services)."""

from django.core.management.base import BaseCommand, CommandError

from webapp.backups import crypto, services
from webapp.backups.errors import BackupError


class Command(BaseCommand):
    help = ("Back up the database, PRIVATE_MEDIA_ROOT and BACKUP_EXTRA_FOLDERS into a new folder, "
            "consistently while the site runs; encrypted with BACKUP_ENCRYPTION_KEY when set. "
            "Restore with `manage.py restore DIR`.")

    def add_arguments(self, parser):
        parser.add_argument("--out", help="the new folder to write the backup to")
        parser.add_argument("--generate-key", action="store_true",
                            help="print a new key for BACKUP_ENCRYPTION_KEY and exit")

    def handle(self, *args, out=None, generate_key=False, **options):
        if generate_key:
            self.stdout.write(crypto.generate_key())
            return
        if not out:
            raise CommandError("give --out DIR, the new folder to write the backup to")
        try:
            if services.encryption_key() is None:
                self.stderr.write("warning: BACKUP_ENCRYPTION_KEY is not set: this backup holds "
                                  "patient images and is NOT encrypted")
            manifest = services.create_backup(out)
        except BackupError as exc:
            raise CommandError(f"backup failed: {exc}") from None
        except OSError as exc:  # the backup's disk full or not writable: nothing was left there
            raise CommandError(f"backup failed: {exc.strerror}: {exc.filename}") from None
        counts = manifest["counts"]
        self.stdout.write(
            f"backup written to {out}: {manifest['database']['vendor']} database "
            f"({counts['cases']} cases, {counts['images']} images, {counts['audit_events']} audit "
            f"rows), {len(manifest['files'])} files, "
            f"{'encrypted' if manifest['encryption'] else 'NOT encrypted'}")
