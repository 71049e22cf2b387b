"""The DICOM listener as a real process (``manage.py dicom_listener``) on a free loopback port,
ready once it accepts TCP connections; and a pynetdicom client for tests that send to it."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.support.data import REPO
from tests.support.processes import ProcessError, free_port, stop_process

LISTENER_AE_TITLE = "TRIAGE"


class DicomListener:
    def __init__(self, env: dict, log_path: Path, ae_title: str = LISTENER_AE_TITLE):
        self.env, self.log_path, self.ae_title = env, log_path, ae_title
        self.port, self.process = free_port(), None
        log_path.parent.mkdir(parents=True, exist_ok=True)

    def start(self, timeout: float = 60) -> "DicomListener":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "manage.py", "dicom_listener", "--port", str(self.port),
                 "--ae-title", self.ae_title, "--bind", "127.0.0.1"],
                cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProcessError(f"the DICOM listener exited with {self.process.returncode}:\n"
                                   f"{self.log_text()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise ProcessError(f"the DICOM listener did not listen in {timeout} s:\n"
                           f"{self.log_text()[-3000:]}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def store(port: int, datasets, calling_ae_title: str, called_ae_title: str = LISTENER_AE_TITLE):
    """C-STORE ``datasets`` over one association from ``calling_ae_title``; returns the
    association's outcome: None if it was rejected, else the response datasets in order."""
    from pynetdicom import AE

    ae = AE(ae_title=calling_ae_title)
    for dataset in datasets:
        ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae_title)
    if not assoc.is_established:
        return None
    try:
        return [assoc.send_c_store(dataset) for dataset in datasets]
    finally:
        assoc.release()


def echo(port: int, calling_ae_title: str, called_ae_title: str = LISTENER_AE_TITLE,
         tls_args=None):
    """C-ECHO (over TLS with ``tls_args``, pynetdicom's (context, hostname)); None if no
    association was established, else the response's status."""
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=calling_ae_title)
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", port, ae_title=called_ae_title, tls_args=tls_args)
    if not assoc.is_established:
        return None
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()
