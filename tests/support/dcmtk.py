"""dcmtk's ``storescu`` and ``echoscu`` (Debian's ``dcmtk`` package) as a third-party DICOM SCU in
the PACS tests: another implementation than pynetdicom's, as a modality or PACS would send. No
pytest here. Each call returns the completed process; its ``stdout``/``stderr`` hold what dcmtk
prints in verbose mode, e.g. ``Received Store Response (Success)`` or ``(Refused: ...)``; a
refused association or a failed store exits non-zero (or prints the status, depending on the
failure), so a test reads both."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def available() -> bool:
    """Whether dcmtk's storescu and echoscu are installed."""
    return shutil.which("storescu") is not None and shutil.which("echoscu") is not None


def _run(command: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


# storescu proposes uncompressed transfer syntaxes only unless told, and cannot decompress JPEG
# itself: a compressed file (the shared subset's are JPEG Baseline) needs the matching option.
PROPOSE_OPTION = {
    "1.2.840.10008.1.2.4.50": "-xy",  # JPEG Baseline (8 bit)
    "1.2.840.10008.1.2.4.51": "-xx",  # JPEG Extended (12 bit)
    "1.2.840.10008.1.2.4.70": "-xs",  # JPEG Lossless SV1
    "1.2.840.10008.1.2.4.90": "-xv",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91": "-xw",  # JPEG 2000
    "1.2.840.10008.1.2.4.80": "-xt",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81": "-xu",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.5": "-xr",  # RLE
    "1.2.840.10008.1.2.1.99": "-xd",  # deflated
}


def propose_options(paths) -> tuple[str, ...]:
    """The storescu option that proposes these files' transfer syntax (with the uncompressed
    ones), when they share one that needs it; none otherwise."""
    import pydicom

    syntaxes = {str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
                for path in paths}
    options = {PROPOSE_OPTION.get(syntax) for syntax in syntaxes}
    return (options.pop(),) if len(options) == 1 and None not in options else ()


def storescu(host: str, port: int, *paths: Path | str, calling_aet: str = "STORESCU",
             called_aet: str = "ANY-SCP", options: tuple[str, ...] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess:
    """C-STORE of these files to ``host``:``port`` (verbose, so the response status is printed;
    network timeouts of 30 s). ``options`` go to storescu before the peer (e.g. ``("-xs",)``);
    by default, the one proposing the files' own transfer syntax (``propose_options``)."""
    if not paths:
        raise ValueError("storescu needs at least one file")
    if options is None:
        options = propose_options(paths)
    command = ["storescu", "-v", "-aet", calling_aet, "-aec", called_aet, "-to", "30", "-ta", "30",
               "-td", "30", *options, host, str(port), *(str(path) for path in paths)]
    return _run(command, timeout)


def echoscu(host: str, port: int, *, calling_aet: str = "ECHOSCU", called_aet: str = "ANY-SCP",
            options: tuple[str, ...] = (), timeout: float = 30) -> subprocess.CompletedProcess:
    """C-ECHO to ``host``:``port`` (verbose: ``Received Echo Response (Success)``)."""
    command = ["echoscu", "-v", "-aet", calling_aet, "-aec", called_aet, "-to", "20", "-ta", "20",
               "-td", "20", *options, host, str(port)]
    return _run(command, timeout)


def output(process: subprocess.CompletedProcess) -> str:
    """Everything dcmtk printed (dcmtk's logger writes to stdout and stderr)."""
    return (process.stdout or "") + (process.stderr or "")


def store_succeeded(process: subprocess.CompletedProcess) -> bool:
    """Exit status 0 and every store response printed is Success."""
    text = output(process)
    responses = [line for line in text.splitlines() if "Received Store Response" in line]
    return (process.returncode == 0 and bool(responses)
            and all("(Success)" in line for line in responses))
