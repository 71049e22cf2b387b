"""Messages between ``ml.core.bounded`` and its decode server's children over a Unix socket: a
pickle with its length in front. Both ends are this package in processes of one user, behind a
socket in a folder only that user can open (``tempfile.mkdtemp``)."""

from __future__ import annotations

import pickle
import struct
import time

_LENGTH = struct.Struct(">Q")


def send(connection, message) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    connection.sendall(_LENGTH.pack(len(payload)) + payload)


def receive(connection, deadline: float | None = None):
    """The next message. Raises EOFError when the other end closed first, TimeoutError past
    ``deadline`` (time.monotonic())."""
    (length,) = _LENGTH.unpack(_read(connection, _LENGTH.size, deadline))
    return pickle.loads(_read(connection, length, deadline))


def _read(connection, count: int, deadline: float | None) -> bytes:
    chunks, left = [], count
    while left:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            connection.settimeout(remaining)
        chunk = connection.recv(min(left, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)
