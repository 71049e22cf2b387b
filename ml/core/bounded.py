"""Read an untrusted X-ray in a child process with a memory ceiling and a deadline (issue 21).

Why a child process: the decoders are C (libjpeg, zlib, OpenJPEG, pydicom's handlers through
numpy); a Python thread running one cannot be stopped at a deadline, and a memory limit
(RLIMIT_AS) set in the web or worker process would bound everything else there too (torch, the
request threads). A child gets its own limit and is killed when its time is up; whatever a hostile
file makes it do, the caller gets an ``XRayError`` and carries on.

Why ``forkserver``: the web (gunicorn threads) and the worker are multi-threaded, and forking a
threaded process can copy a lock some other thread held; ``spawn`` would import numpy, Pillow
and pydicom again for every file (about half a second). The fork server starts once, a clean
single-threaded interpreter with ``ml.core.reading`` imported, and forks a child per file in a few
milliseconds. A semaphore bounds how many children one process runs at once (``concurrency``), so
a burst of uploads costs at most ``concurrency`` x ``memory_mb``.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import threading
from dataclasses import dataclass

from ml.core.errors import DecodeLimitExceeded, XRayError
from ml.core.reading import XRay, read_xray


@dataclass(frozen=True)
class DecodeLimits:
    memory_mb: int = 1024  # address space the decoding may add to the child's, beyond its start
    time_s: float = 20.0  # from the child's start to its answer
    concurrency: int = 2  # children per process at once


_lock = threading.Lock()
_context = None
_slots: dict[int, threading.BoundedSemaphore] = {}


def _start_context(concurrency: int):
    global _context
    with _lock:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(["ml.core.bounded", "ml.core.decode_warmup"])
            _context = context
        slots = _slots.setdefault(concurrency, threading.BoundedSemaphore(concurrency))
    return _context, slots


def read_xray_bounded(data: bytes, limits: DecodeLimits = DecodeLimits()) -> XRay:
    """``read_xray(data)`` in a child process within ``limits``. Raises what read_xray raises,
    and DecodeLimitExceeded when the child runs out of memory or time (or dies)."""
    context, slots = _start_context(max(1, limits.concurrency))
    with slots:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_decode, args=(data, limits.memory_mb * 2**20, sender),
                                daemon=True, name="xray-decode")
        child.start()
        sender.close()
        try:
            if not receiver.poll(limits.time_s):
                raise DecodeLimitExceeded(
                    f"Reading the image took longer than {limits.time_s:g} s, far longer than "
                    "any chest X-ray needs; it was stopped.")
            try:
                outcome, value = receiver.recv()
            except (EOFError, OSError):  # the child died: the kernel or a decoder killed it
                outcome, value = "memory", None
        finally:
            if child.is_alive():
                child.kill()
            child.join()
            receiver.close()
    if outcome == "ok":
        return value
    if outcome == "memory":
        raise DecodeLimitExceeded(
            f"Reading the image needs more than {limits.memory_mb} MB of memory, far more than "
            "any chest X-ray needs; it was refused.")
    raise value


def _decode(data: bytes, memory_bytes: int, sender) -> None:
    """The child: read, answer ("ok", XRay) / ("refused", XRayError) / ("memory", None)."""
    try:
        _limit_address_space(memory_bytes)
        xray = read_xray(data)
        sender.send(("ok", xray))
    except MemoryError:
        sender.send(("memory", None))
    except XRayError as exc:
        # A decoder that cannot allocate says so in its own words (Pillow: OSError, then the
        # reader's CorruptImage); the limit is the reason, not damage.
        cause = exc.__cause__
        if isinstance(cause, MemoryError) or (
                isinstance(cause, OSError) and "memory" in str(cause).lower()):
            sender.send(("memory", None))
        else:
            sender.send(("refused", exc))
    finally:
        sender.close()


def _limit_address_space(memory_bytes: int) -> None:
    """RLIMIT_AS: what the child has mapped at start (the interpreter, numpy's thread buffers)
    plus ``memory_bytes``. Linux's /proc gives the start; elsewhere there is no limit."""
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    ceiling = mapped + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


def peak_memory_mb(data: bytes) -> float:
    """The largest resident size (MB) of a child that reads ``data`` with no limits: what a
    decode costs, for tests and capacity planning."""
    context, _ = _start_context(1)
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_measure, args=(data, sender), daemon=True)
    child.start()
    sender.close()
    try:
        return receiver.recv()
    finally:
        child.join()
        receiver.close()


def _measure(data: bytes, sender) -> None:
    try:
        read_xray(data)
    except XRayError:
        pass
    sender.send(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    sender.close()
