"""What a backup copies besides the database: data folders, each under a short name that is its
folder in the backup, and the files of each that the database names.

- ``media``: PRIVATE_MEDIA_ROOT. The files the database names (originals, previews, masks,
  overlays: every FileField of ``webapp.cases.models``) are *required*: a backup without one
  of them is refused. The DICOM results (SEG, SC, SR) are named by the run that made them, not
  stored in a field: they are caches built on first request (``services.results``), copied when
  they exist (*derived*); one missing is built again after a restore.
- the folders of ``BACKUP_EXTRA_FOLDERS`` (``name=/path,...``): copied whole. This is where
  a model registry's folder goes (issue 23) until it names its files in the database; then it
  becomes a ``Folder`` of its own here, with a ``named_files`` function like ``media``'s.

Every folder must hold write-once files: a file is written completely under a new name and
never changed in place (``webapp.cases.services.files``: names carry ids and run tokens and
``save`` never overwrites). That is what lets the copy of a file, made after the database
snapshot, be the file the snapshot names."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

NAME = re.compile(r"^[a-z][a-z0-9_-]{0,39}$")
# Every FileField of the product, which ``media_files`` reads (a test fails when a model gains
# one that is not here: its files would be left out of backups).
MEDIA_FILE_FIELDS = {"cases.caseimage": ("original", "preview"), "cases.job": ("mask", "overlay"),
                     "reviews.correctedoutline": ("mask",)}


@dataclass(frozen=True)
class Folder:
    name: str  # its folder in the backup
    root: Callable[[], Path]  # where it lives on this machine (read at backup and at restore)
    setting: str  # the setting that says where, for messages and the manifest
    # (required, derived) names relative to root, read from the database snapshot on ``using``;
    # None: every file under root is required (a folder of write-once files nobody names).
    named_files: Callable[[str], tuple[list[str], list[str]]] | None = None


def media_files(using: str) -> tuple[list[str], list[str]]:
    from webapp.cases.models import CaseImage
    from webapp.cases.services import files

    required, derived = [], []
    for image in CaseImage.objects.using(using).select_related("job").order_by("pk").iterator():
        job = getattr(image, "job", None)
        stored = [image.original.name, image.preview.name]
        if job is not None:
            stored += [job.mask.name, job.overlay.name]
        stored = [name for name in stored if name]
        required += stored
        derived += [name for name in files.image_files(image) if name not in stored]
    # The outlines clinicians corrected (webapp.reviews.outlines): write-once, one per version.
    from webapp.reviews.models import CorrectedOutline

    required += list(CorrectedOutline.objects.using(using).order_by("pk")
                     .values_list("mask", flat=True))
    return required, derived


def folders() -> list[Folder]:
    found = [Folder("media", lambda: Path(settings.PRIVATE_MEDIA_ROOT), "PRIVATE_MEDIA_ROOT",
                    media_files)]
    for name, path in sorted(settings.BACKUP_EXTRA_FOLDERS.items()):
        found.append(Folder(name, lambda path=path: Path(path), f"BACKUP_EXTRA_FOLDERS[{name}]"))
    for folder in found:
        if not NAME.match(folder.name) or folder.name == "database":
            raise ValueError(f"backup folder name {folder.name!r}: lower-case letters, digits, - _")
    if len({folder.name for folder in found}) != len(found):
        raise ValueError("two backup folders share a name (BACKUP_EXTRA_FOLDERS)")
    return found


def files_under(root: Path) -> list[str]:
    """Every regular file under ``root``, relative, in a stable order."""
    if not root.is_dir():
        return []
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())
