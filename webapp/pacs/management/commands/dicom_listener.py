"""``python manage.py dicom_listener [--port 11112] [--ae-title TRIAGE] [--bind 0.0.0.0]``:
receive X-rays over DICOM from registered nodes (webapp.pacs.listener), in the foreground."""

from django.conf import settings
from django.core.management.base import BaseCommand

from webapp.pacs.listener import serve


class Command(BaseCommand):
    help = "Run the DICOM listener (C-ECHO, C-STORE of chest radiographs from registered nodes)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None,
                            help=f"TCP port (default DICOM_PORT, {settings.DICOM_PORT})")
        parser.add_argument("--ae-title", default=None,
                            help=f"called AE title (default DICOM_AE_TITLE, {settings.DICOM_AE_TITLE})")
        parser.add_argument("--bind", default=None,
                            help=f"address (default DICOM_BIND_ADDRESS, {settings.DICOM_BIND_ADDRESS})")

    def handle(self, *args, port, ae_title, bind, **options):
        self.stdout.write(f"DICOM listener {ae_title or settings.DICOM_AE_TITLE} on "
                          f"{bind or settings.DICOM_BIND_ADDRESS}:{port or settings.DICOM_PORT}")
        self.stdout.flush()
        try:
            serve(bind, port, ae_title, block=True)
        except KeyboardInterrupt:
            pass
