"""Private storage for uploads and results: a folder that no URL maps to. Files are named, written
and served through webapp.cases.services.files only: to the pages and the API after their
access check, and to the worker."""

from django.conf import settings
from django.core.files.storage import FileSystemStorage
from django.utils.functional import LazyObject


class PrivateStorage(LazyObject):
    def _setup(self):
        # base_url=None: .url() fails loudly instead of producing a public link.
        self._wrapped = FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None,
                                          file_permissions_mode=0o640,
                                          directory_permissions_mode=0o750)


private_storage = PrivateStorage()


def get_private_storage():
    # A callable, so migrations do not depend on the settings of the machine that made them.
    return private_storage
