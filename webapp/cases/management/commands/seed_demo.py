"""``python manage.py seed_demo [--password P] [--data FOLDER] [--force]``: the demo clinician and
a handful of real films in their worklist (webapp.cases.services.demo). Safe to run again: a
second run adds nothing. Without the shared data it says so in one line and exits 0, so that
``scripts/run --demo`` still starts, empty."""

from pathlib import Path

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webapp.cases.services import demo
from webapp.cases.services.uploads import UploadRejected


class Command(BaseCommand):
    help = "Create the demo clinician and load a handful of real films into their worklist."

    def add_arguments(self, parser):
        parser.add_argument("--password", default=None,
                            help=f"the demo user's password (default: {demo.DEFAULT_PASSWORD} "
                                 "for a new demo user; an existing one keeps theirs)")
        parser.add_argument("--data", type=Path, default=None,
                            help=f"the SIIM-ACR subset's folder (default: ${demo.DATA_ENV}, "
                                 "else ../shared/data/siim-acr-subset next to the repository)")
        parser.add_argument("--force", action="store_true",
                            help="seed even under production settings (needs --password)")

    def handle(self, *args, password, data, force, **options):
        refused = demo.demo_refused(force, password)
        if refused:
            raise CommandError(f"seed_demo: {refused}")
        if password:
            try:
                validate_password(password)
            except ValidationError as exc:
                raise CommandError(f"seed_demo: the password is refused: {' '.join(exc.messages)}")
        data_dir = data or demo.default_data_dir()
        try:
            outcome = demo.seed(data_dir, password)
        except demo.DemoDataMissing as exc:
            self.stdout.write(f"seed_demo: {exc}; starting without demo films")
            return
        except demo.DemoAccountTaken as exc:
            raise CommandError(f"seed_demo: {exc}")
        except UploadRejected as exc:
            raise CommandError(f"seed_demo: a demo film was refused: {exc}")
        self.stdout.write(
            f"seed_demo: {len(outcome.added)} film(s) added to the worklist of {demo.USERNAME!r} "
            f"({outcome.already_there} already there; {len(outcome.films)} in the demo); "
            "the worker reads them")
        if not password and outcome.user.check_password(demo.DEFAULT_PASSWORD):
            password = demo.DEFAULT_PASSWORD
        # A password set earlier with --password is not known here, and stays as it is.
        self.stdout.write(f"Demo log-in: user {demo.USERNAME}, password "
                          f"{password or 'the one set earlier with --password'}")
