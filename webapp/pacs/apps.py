from django.apps import AppConfig


class PacsConfig(AppConfig):
    name = "webapp.pacs"
    label = "pacs"
    verbose_name = "PACS integration (DICOM)"
