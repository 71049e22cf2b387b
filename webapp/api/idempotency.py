"""``Idempotency-Key`` on POST: a retry with the same key and the same request creates nothing
and answers with what the first one created; the same key with a different request is refused
(422). Keys are per user and per scope ("case", "batch").

A view calls ``begin`` once the request is valid, answers ``replay`` when ``previous()`` finds
the earlier object, and calls ``remember`` once it has created the new one, all inside the
request's transaction."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.db import IntegrityError, connection, transaction
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from webapp.api.errors import Conflict, KeyReused
from webapp.api.models import IdempotencyKey

HEADER = "Idempotency-Key"
KEY = re.compile(r"^[\x21-\x7e]{1,200}$")  # visible ASCII, as a header value can be


@dataclass(frozen=True)
class Claim:
    user: object
    scope: str
    key: str
    request_hash: str

    def previous(self) -> IdempotencyKey | None:
        """What an earlier request with this key created; None if there was none. Raises
        KeyReused when that request was a different one."""
        record = IdempotencyKey.objects.filter(owner=self.user, scope=self.scope, key=self.key).first()
        if record is not None and record.request_hash != self.request_hash:
            raise KeyReused()
        return record

    def remember(self, **objects) -> None:
        """Record what this request created (``case=`` or ``batch=``)."""
        try:
            with transaction.atomic():
                IdempotencyKey.objects.create(owner=self.user, scope=self.scope, key=self.key,
                                              request_hash=self.request_hash, **objects)
        except IntegrityError:
            raise Conflict("A request with this Idempotency-Key is in progress; retry it.")


def begin(request, scope: str, files=(), fields: dict | None = None) -> Claim | None:
    """The request's claim on its key (None without the header), after taking the key's lock.
    ``files`` and ``fields`` are what makes two requests the same one. Raises ValidationError
    for a malformed key."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not KEY.match(key):
        raise ValidationError({HEADER: "1 to 200 visible ASCII characters."})
    claim = Claim(request.user, scope, key, _hash_request(files, fields or {}))
    _lock(claim)
    return claim


def lock(claim: Claim) -> None:
    """Take the claim's key lock again, in a later transaction of the same request (a view that
    reads its files between two short transactions rather than inside one)."""
    _lock(claim)


def replay(data) -> Response:
    """The answer to a retry: 200 with the earlier object, marked as replayed."""
    response = Response(data)
    response["Idempotent-Replayed"] = "true"
    return response


def _lock(claim: Claim) -> None:
    """Serialise requests with the same key (PostgreSQL: a transaction-scoped advisory lock),
    so that two concurrent retries cannot both create. The unique constraint is the backstop."""
    if connection.vendor == "postgresql":
        digest = hashlib.sha256(f"{claim.user.pk}:{claim.scope}:{claim.key}".encode()).digest()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)",
                           [int.from_bytes(digest[:8], "big", signed=True)])


def _hash_request(files, fields: dict) -> str:
    digest = hashlib.sha256()
    for name, value in sorted(fields.items()):
        digest.update(f"{name}={value}\n".encode())
    for uploaded in files:
        digest.update(f"file {uploaded.name} {uploaded.size}\n".encode())
        for chunk in uploaded.chunks():
            digest.update(chunk)
        uploaded.seek(0)
    return digest.hexdigest()
