"""manage.py register_model FILE [--report report.json]: check a model file (it loads, as the
workers load it, and its declared version is its weights' hash), copy it into the registry as a
candidate, audited. Runs where the worker requirements (torch) are installed."""

from django.core.management.base import BaseCommand, CommandError

from webapp.cases.services.registry import ModelRejected, register_model


class Command(BaseCommand):
    help = "Register a model file (ml.train's .safetensors) as a candidate in the model registry."

    def add_arguments(self, parser):
        parser.add_argument("file", help="the model file (.safetensors) written by ml.train")
        parser.add_argument("--report", help="ml.evaluate's report.json for this model")
        parser.add_argument("--by", metavar="USERNAME",
                            help="the user the audit row names (default: none, the system)")

    def handle(self, *args, file, report=None, by=None, **options):
        try:
            import torch  # noqa: F401
        except ModuleNotFoundError:
            raise CommandError("register_model needs the worker requirements (torch): run it where "
                               "a worker runs, e.g. in the worker container") from None
        user = None
        if by:
            from django.contrib.auth import get_user_model

            user = get_user_model().objects.filter(username=by, is_active=True).first()
            if user is None:
                raise CommandError(f"no active user {by!r}")
        try:
            model = register_model(file, report=report, by=user)
        except ModelRejected as exc:
            raise CommandError(f"refused: {exc}") from None
        self.stdout.write(f"registered {model.version} as a candidate; promote it on "
                          "/cases/model/registry/")
