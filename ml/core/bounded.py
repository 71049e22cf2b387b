"""Read an untrusted X-ray in a child process with a memory ceiling and a deadline (issue 21).

Why a child process: the decoders are C (libjpeg, zlib, OpenJPEG, pydicom's handlers through
numpy); a Python thread running one cannot be stopped at a deadline, and a memory limit
(RLIMIT_AS) set in the web or worker process would bound everything else there too (torch, the
request threads). A child gets its own limits from the kernel (RLIMIT_AS, an alarm at the
deadline); whatever a hostile file makes it do, the caller gets an ``XRayError`` and carries on.

Why a decode server of our own (``ml.core.decode_server``): the web (gunicorn threads) and the
worker (Celery's prefork pool, whose processes multiprocessing refuses to let have children) are
poor places to fork from, and starting a fresh interpreter per file would import numpy, Pillow
and pydicom again (about half a second). Each process starts one server, a plain subprocess that
imports the readers once, single-threaded, and forks a child per file in a few milliseconds. A
semaphore bounds how many files one process has read at once (``concurrency``), so a burst of
uploads costs at most ``concurrency`` x ``memory_mb``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ml.core import decode_protocol as protocol
from ml.core.errors import DecodeLimitExceeded
from ml.core.reading import XRay

SERVER_START_S = 60.0  # the server imports numpy, Pillow and pydicom: seconds on a busy machine


@dataclass(frozen=True)
class DecodeLimits:
    memory_mb: int = 1024  # address space the decoding may add to the child's, beyond its start
    time_s: float = 10.0  # from the child's start to its answer
    concurrency: int = 2  # files one process reads at once


_lock = threading.Lock()
_server: dict = {}  # pid of the process that started it, path of its socket, the Popen
_slots: dict[int, threading.BoundedSemaphore] = {}


def read_xray_bounded(data: bytes, limits: DecodeLimits = DecodeLimits()) -> XRay:
    """``read_xray(data)`` in a child process within ``limits``. Raises what read_xray raises,
    and DecodeLimitExceeded when the child runs out of memory or time (or dies)."""
    with _slots_for(max(1, limits.concurrency)):
        started = time.monotonic()
        outcome, value, _ = _ask(data, limits.memory_mb * 2**20, limits.time_s)
    if outcome == "ok":
        return value
    if outcome == "died" and time.monotonic() - started >= limits.time_s * 0.9:
        outcome = "time"
    if outcome == "time":
        raise DecodeLimitExceeded(
            f"Reading the image took longer than {limits.time_s:g} s, far longer than any chest "
            "X-ray needs; it was stopped.")
    if outcome == "memory":
        raise DecodeLimitExceeded(
            f"Reading the image needs more than {limits.memory_mb} MB of memory, far more than "
            "any chest X-ray needs; it was refused.")
    if outcome == "died":  # the kernel ended it: memory that no allocator reported, or a fault
        raise DecodeLimitExceeded(
            f"Reading the image stopped its reader (more than {limits.memory_mb} MB of memory, "
            "or a decoder fault); the file cannot be used.")
    raise value


def peak_memory_mb(data: bytes) -> float:
    """The largest resident size (MB) of a child that reads ``data`` with no memory limit:
    what a decode costs, for tests and capacity planning."""
    return _ask(data, 0, 600.0)[2] / 1024


def _slots_for(concurrency: int) -> threading.BoundedSemaphore:
    with _lock:
        return _slots.setdefault(concurrency, threading.BoundedSemaphore(concurrency))


def _ask(data: bytes, memory_bytes: int, time_s: float):
    """(outcome, value, peak KB) from a child of the server: outcome "ok" (an XRay), "refused"
    (the XRayError), "memory", "time" or "died" (no answer: the kernel ended it)."""
    deadline = time.monotonic() + time_s + 5.0  # the child's own alarm comes first
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as connection:
        connection.connect(_server_path())
        try:
            protocol.send(connection, (data, memory_bytes, time_s))
            return protocol.receive(connection, deadline)
        except TimeoutError:
            return "time", None, 0
        except (EOFError, ConnectionError):
            return "died", None, 0


def _server_path() -> str:
    """The socket of this process's decode server, started on first use (and again in a forked
    process, or after the server died)."""
    with _lock:
        process = _server.get("process")
        if _server.get("pid") == os.getpid() and process is not None and process.poll() is None:
            return _server["path"]
        folder = tempfile.mkdtemp(prefix="xray-decode-")  # 0700: only this user can connect
        path = os.path.join(folder, "socket")
        process = subprocess.Popen(
            [sys.executable, "-m", "ml.core.decode_server", path, str(os.getpid())],
            cwd=Path(__file__).resolve().parents[2], stdin=subprocess.DEVNULL)
        _wait_for(path, process)
        _server.update(pid=os.getpid(), path=path, process=process)
        atexit.register(_stop, process, folder)
        return path


def _wait_for(path: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + SERVER_START_S
    while not os.path.exists(path):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"The X-ray decode server did not start (exit {process.poll()}).")
        time.sleep(0.02)


def _stop(process: subprocess.Popen, folder: str) -> None:
    if process.poll() is None:
        process.kill()  # it ignores SIGTERM (ml.core.decode_server)
    shutil.rmtree(folder, ignore_errors=True)
