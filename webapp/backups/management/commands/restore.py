"""manage.py restore DIR: checks a backup whole, then puts it back (webapp.backups.services)."""

from django.core.management.base import BaseCommand, CommandError

from webapp.backups import services
from webapp.backups.errors import BackupError


class Command(BaseCommand):
    help = ("Restore a backup made by `manage.py backup` into an empty database and empty data "
            "folders. Every file is checked (size, checksum, decryption with "
            "BACKUP_ENCRYPTION_KEY) before anything changes. Stop the site and the workers first.")

    def add_arguments(self, parser):
        parser.add_argument("folder", help="the backup's folder")
        parser.add_argument("--check", action="store_true",
                            help="only check the backup (everything restore checks); change nothing")
        parser.add_argument("--force", action="store_true",
                            help="replace a database that holds data and write over files that "
                                 "are there (everything in the database is lost)")

    def handle(self, *args, folder, check=False, force=False, **options):
        try:
            if check:
                manifest = services.verify_backup(folder)
            else:
                manifest = services.restore_backup(folder, force=force)
        except BackupError as exc:
            failed = isinstance(exc, services.RestoreFailed)
            raise CommandError(f"restore {'failed' if failed else 'refused'}: {exc}") from None
        except OSError as exc:  # before any change (services.RestoreFailed covers the rest)
            raise CommandError(f"restore refused: {exc.strerror}: {exc.filename}") from None
        counts = manifest["counts"]
        what = "backup is sound" if check else "restored"
        self.stdout.write(f"{what}: backup of {manifest['created_at']}, {counts['cases']} cases, "
                          f"{counts['images']} images, {counts['audit_events']} audit rows, "
                          f"{len(manifest['files'])} files")
        if not check and services.pending_migrations():
            self.stdout.write("the backup is from an earlier version: run `manage.py migrate` "
                              "before starting the site")
