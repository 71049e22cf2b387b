"""The decode server (``python -m ml.core.decode_server SOCKET PARENT_PID``), started by
``ml.core.bounded``: single-threaded, the readers imported and warmed once, it forks one child
per connection. The child limits itself (RLIMIT_AS: what it has mapped plus the memory asked for;
an alarm at the deadline, whose signal ends it), reads the file and answers
(outcome, XRay or XRayError, peak resident KB). The server ends when its parent has gone."""

from __future__ import annotations

import os
import resource
import signal
import socket
import sys

from ml.core import decode_protocol as protocol
from ml.core import decode_warmup  # noqa: F401  (imports and warms the readers before any fork)
from ml.core.errors import XRayError
from ml.core.reading import read_xray

PARENT_CHECK_S = 2.0


def main(path: str, parent: int) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    # A stop sent to the whole group or cgroup (systemd, Ctrl-C, a worker's warm shutdown) is
    # for the process that started this one: a file being read is read to its end, for a job
    # that is finishing. The server ends once that process has gone; its children at their alarm.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path + ".new")
    os.rename(path + ".new", path)  # the client waits for the name: it appears ready to accept
    listener.listen(64)
    listener.settimeout(PARENT_CHECK_S)
    try:
        while os.getppid() == parent:
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            if os.fork() == 0:
                listener.close()
                _child(connection)
            connection.close()
    finally:
        listener.close()
        if os.path.exists(path):
            os.unlink(path)


def _child(connection) -> None:
    code = 0
    try:
        connection.settimeout(None)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        data, memory_bytes, time_s = protocol.receive(connection)
        signal.setitimer(signal.ITIMER_REAL, time_s)  # SIGALRM's default action ends the child
        _first_for_the_oom_killer()
        if memory_bytes:
            _limit_address_space(memory_bytes)
        protocol.send(connection, _read(data))
    except BaseException:  # the client sees the connection close: "died"
        code = 1
    finally:
        os._exit(code)


def _read(data: bytes) -> tuple:
    try:
        outcome, value = "ok", read_xray(data)
    except MemoryError:
        outcome, value = "memory", None
    except XRayError as exc:
        # A decoder that cannot allocate says so in its own words (Pillow: an OSError, which
        # the reader reports as damage); the limit is the reason, not damage.
        cause = exc.__cause__
        short = isinstance(cause, MemoryError) or (
            isinstance(cause, OSError) and "memory" in str(cause).lower())
        outcome, value = ("memory", None) if short else ("refused", exc)
    return outcome, value, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _first_for_the_oom_killer() -> None:
    """When a container runs out of memory, the kernel ends this child before the web or worker
    process (raising one's own score needs no privilege; Linux only)."""
    try:
        with open("/proc/self/oom_score_adj", "w") as score:
            score.write("1000")
    except OSError:
        pass


def _limit_address_space(memory_bytes: int) -> None:
    """RLIMIT_AS: what the child has mapped now (the interpreter, numpy's thread buffers) plus
    ``memory_bytes``. Linux's /proc gives the start; elsewhere there is no limit."""
    try:
        with open("/proc/self/statm") as statm:
            mapped = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return
    ceiling = mapped + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
