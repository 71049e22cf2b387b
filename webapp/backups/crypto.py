"""Encryption of a backup's files with the key in BACKUP_ENCRYPTION_KEY (the ``cryptography``
package: AES-256-GCM, HKDF, HMAC).

Why chunks: a database dump or an X-ray can be larger than memory should hold, and AES-GCM (like
Fernet) encrypts a whole message at once. Each file is cut into CHUNK_BYTES pieces, each sealed
with its own random nonce; the associated data binds every piece to the file's path in the
backup, its index and whether it is the last, so pieces cannot be swapped, reordered, moved to
another file or cut off at the end without the decryption failing. On top of that the manifest,
which holds every file's SHA-256, is authenticated with an HMAC from the same key: a file left
out of both the folder and the manifest is caught too.

The key: 32 random bytes, URL-safe base64 (``manage.py backup --generate-key``). Two keys are
derived from it with HKDF (one for the files, one for the manifest's HMAC) and a short key id
is stored in the manifest, so that a wrong key is named as such."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Iterator
from typing import BinaryIO

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .errors import BackupError

ALGORITHM = "AES-256-GCM"
CHUNK_BYTES = 1 << 20
NONCE_BYTES = 12
TAG_BYTES = 16
MAGIC = b"PTBACKUP-GCM-v1\n"  # first bytes of every encrypted file


def generate_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


class Key:
    """The keys derived from BACKUP_ENCRYPTION_KEY's value."""

    def __init__(self, text: str):
        try:
            raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raw = b""
        if len(raw) != 32:
            raise BackupError("BACKUP_ENCRYPTION_KEY is not a backup key (32 bytes, URL-safe "
                              "base64): make one with `manage.py backup --generate-key`")
        self._files = AESGCM(_derive(raw, b"files"))
        self._mac = _derive(raw, b"manifest-mac")
        self.key_id = _derive(raw, b"key-id")[:8].hex()

    # --- files ---------------------------------------------------------------------------------

    def encrypt(self, name: str, source: BinaryIO, target: BinaryIO) -> tuple[int, str]:
        """Read ``source`` to its end, write it sealed to ``target``; returns the plaintext's
        size and SHA-256."""
        digest, size = hashlib.sha256(), 0
        target.write(MAGIC)
        chunk, index = source.read(CHUNK_BYTES), 0
        while True:
            following = source.read(CHUNK_BYTES) if len(chunk) == CHUNK_BYTES else b""
            final = not following
            nonce = os.urandom(NONCE_BYTES)
            target.write(nonce + self._files.encrypt(nonce, chunk, _aad(name, index, final)))
            digest.update(chunk)
            size += len(chunk)
            if final:
                return size, digest.hexdigest()
            chunk, index = following, index + 1

    def decrypt(self, name: str, source: BinaryIO) -> Iterator[bytes]:
        """The plaintext of a file written by ``encrypt`` under ``name``, chunk by chunk; raises
        BackupError at the first piece that is damaged, missing or out of place."""
        if source.read(len(MAGIC)) != MAGIC:
            raise BackupError(f"{name} is not an encrypted backup file (damaged?)")
        sealed_size = NONCE_BYTES + CHUNK_BYTES + TAG_BYTES
        piece, index = source.read(sealed_size), 0
        while True:
            following = source.read(sealed_size) if len(piece) == sealed_size else b""
            final = not following
            if len(piece) < NONCE_BYTES + TAG_BYTES:
                raise BackupError(f"{name} is cut short (damaged or partly copied)")
            try:
                yield self._files.decrypt(piece[:NONCE_BYTES], piece[NONCE_BYTES:],
                                          _aad(name, index, final))
            except InvalidTag:
                raise BackupError(f"{name} does not decrypt: it is damaged, cut short, or from "
                                  "another backup") from None
            if final:
                return
            piece, index = following, index + 1

    # --- the manifest --------------------------------------------------------------------------

    def sign(self, data: bytes) -> str:
        return hmac.new(self._mac, data, hashlib.sha256).hexdigest()

    def verify(self, data: bytes, signature: str) -> bool:
        return hmac.compare_digest(self.sign(data), signature.strip())


def _derive(raw: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"pneumothorax-triage backup " + purpose).derive(raw)


def _aad(name: str, index: int, final: bool) -> bytes:
    return MAGIC + name.encode() + b"\0" + struct.pack(">QB", index, final)
