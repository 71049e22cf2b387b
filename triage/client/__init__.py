"""A Python client for the Pneumothorax Triage REST API: submit a folder of chest X-rays, wait,
collect the results (``python -m triage.client submit DIR ...``; see ``cli``).

- ``api``:        ``Api`` (token session per thread, retries, 4xx as ``ClientError``)
- ``state``:      ``State``, the resumable record of what was uploaded
- ``files``:      finding the X-rays, their hashes and the names of their masks
- ``submission``: opening a batch, uploading one file as one case (idempotent)
- ``results``:    waiting for the batch, fetching cases, masks and the results CSV
- ``run``:        ``submit``, the whole job; ``cli``: ``main``, its command line

Only the standard library, ``requests`` and ``tqdm``."""

from triage.client.cli import main
from triage.client.files import CONTENT_TYPES, EXTENSIONS, find_files, mask_name, sha256_file
from triage.client.api import RETRY_STATUSES, Api, ClientError
from triage.client.results import CSV_FIELDS, download_mask, fetch_cases, wait_for_batch
from triage.client.run import submit
from triage.client.state import State
from triage.client.submission import open_batch, upload_one

__all__ = ["Api", "CONTENT_TYPES", "CSV_FIELDS", "ClientError", "EXTENSIONS", "RETRY_STATUSES",
           "State", "download_mask", "fetch_cases", "find_files", "main", "mask_name",
           "open_batch", "sha256_file", "submit", "upload_one", "wait_for_batch"]
