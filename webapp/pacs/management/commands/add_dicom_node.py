"""``python manage.py add_dicom_node --ae-title ORTHANC --host 127.0.0.1 --port 4242 --owner alice``:
register (or update) a DICOM node that may send X-rays, owned by a user (or a team of theirs),
and that receives the results of what it sent. The same as the admin's DICOM nodes page."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webapp.cases.services.uploads import UploadRejected
from webapp.pacs.models import Direction
from webapp.pacs.services.nodes import register_node


class Command(BaseCommand):
    help = "Register a DICOM node (AE title, host, port) whose studies belong to a user."

    def add_arguments(self, parser):
        parser.add_argument("--ae-title", required=True)
        parser.add_argument("--host", required=True, help="address it connects from and "
                                                          "where results go")
        parser.add_argument("--port", type=int, required=True, help="its DICOM port")
        parser.add_argument("--owner", required=True, help="username owning its cases")
        parser.add_argument("--team", default=None, help="one of the owner's teams")
        parser.add_argument("--direction", choices=Direction.values, default=Direction.BOTH)
        parser.add_argument("--name", default="", help="a description")

    def handle(self, *args, ae_title, host, port, owner, team, direction, name, **options):
        try:
            node, created = register_node(ae_title=ae_title, host=host, port=port, owner=owner,
                                          team=team, direction=direction, name=name)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        except UploadRejected as exc:  # TeamRefused
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"{'registered' if created else 'updated'} {node} "
                          f"(owner {node.owner}, {node.get_direction_display().lower()})")
