"""Taking a backup, checking one and restoring it (``manage.py backup`` / ``restore``).

A backup is a folder::

    manifest.json          what is in it: format, date, database, migrations, every file's
                           size and SHA-256 (no patient data: files are named by ids)
    manifest.json.hmac     with a key only: the manifest's HMAC, so it cannot be edited
    database.pgdump        pg_dump's custom format (or database.sqlite3)
    media/cases/...        PRIVATE_MEDIA_ROOT's files the database names
    <name>/...             the folders of BACKUP_EXTRA_FOLDERS

It is written under a hidden name beside ``--out`` and renamed to it once complete, so a folder
with that name is always a whole backup; ``manifest.json`` is written last.

Consistency while the site runs: one database snapshot gives the dump and the list of files
(``database.snapshot``); the files are copied after. Files are written once and never changed
(``sources``), so a copy made after the snapshot is the file it names, unless the file was
deleted since (a case deleted meanwhile: its files go after its transaction commits). Then the
backup is not consistent any more, and the whole backup starts again from a new snapshot, in
which that case is gone; BACKUP_ATTEMPTS times at most. A file still missing then is lost from
storage, not being deleted: the backup fails and names it, rather than holding a database
whose files are not all there.

Restore checks everything first (the manifest and its HMAC, every file's size, decryption and
checksum, that this code knows every migration of the backup, that the target is empty) and
changes nothing until all of that passed; then it writes the files, then the database (in one
transaction), then the audit row of the restore (after, so that the restore does not erase it).
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import BinaryIO

import django
from django.conf import settings
from django.db import transaction

from . import database, sources
from .crypto import ALGORITHM, CHUNK_BYTES, Key
from .errors import BackupError

FORMAT = "pneumothorax-triage-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.hmac"
# A DICOM result (a cache, written in place by storage.save) modified this recently may still be
# being written: it is left out, and built again on request after a restore.
DERIVED_SETTLE_S = 5.0
READ_BYTES = 1 << 20


class RestoreFailed(BackupError):
    """Restore stopped after it began to change things (the checks had passed)."""


class FileVanished(BackupError):
    """A file the snapshot names is gone: deleted after the snapshot (try again) or lost."""


def encryption_key() -> Key | None:
    text = settings.BACKUP_ENCRYPTION_KEY
    return Key(text) if text else None


# === backup ======================================================================================

def create_backup(out: Path, user=None) -> dict:
    """Write a backup to the new folder ``out``; returns its manifest."""
    out = Path(out).absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BackupError(f"{out} already exists and is not an empty folder: give a new one")
    key = encryption_key()
    folders = sources.folders()
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    attempts = max(1, settings.BACKUP_ATTEMPTS)
    for attempt in range(1, attempts + 1):
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(mode=0o700)
        try:
            manifest = _take(partial, key, folders)
            break
        except FileVanished as exc:
            vanished = exc
            if attempt == attempts:
                shutil.rmtree(partial, ignore_errors=True)
                raise BackupError(f"{exc} in each of {attempts} attempts: it is lost from storage "
                                  "(not a deletion in progress); no backup was written") from None
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
    manifest["attempts"] = attempt
    if attempt > 1:
        manifest["retried_because"] = str(vanished)
    _write_manifest(partial, manifest, key)
    if out.exists():
        out.rmdir()
    partial.rename(out)
    _audit_backup(user, manifest)
    return manifest


def _take(partial: Path, key: Key | None, folders: list[sources.Folder]) -> dict:
    work = partial / ".work"
    work.mkdir()
    manifest = {"format": FORMAT, "format_version": FORMAT_VERSION,
                "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "django": django.get_version(),
                "encryption": ({"algorithm": ALGORITHM, "chunk_bytes": CHUNK_BYTES,
                                "key_id": key.key_id} if key else None),
                "folders": {folder.name: folder.setting for folder in folders}}
    plan: list[tuple[sources.Folder, list[str], list[str]]] = []
    with database.snapshot(work) as snap:
        manifest["migrations"] = database.applied_migrations(snap.using)
        manifest["counts"] = database.counts(snap.using)
        for folder in folders:
            if folder.named_files is None:
                plan.append((folder, sources.files_under(folder.root()), []))
            else:
                plan.append((folder, *folder.named_files(snap.using)))
        entry = {"vendor": database.vendor(), "path": database.dump_name()}

        def write_dump(stream: BinaryIO) -> None:
            entry.update(_store(partial, entry["path"], stream, key))
        snap.dump(write_dump)
        manifest["database"] = entry
    work.rmdir()

    manifest["files"], skipped = [], 0
    for folder, required, derived in plan:
        root = folder.root()
        for name in dict.fromkeys(required):
            manifest["files"].append(_copy(partial, folder, root, name, key, derived=False))
        for name in dict.fromkeys(derived):
            copied = _copy_settled(partial, folder, root, name, key)
            if copied:
                manifest["files"].append(copied)
            elif copied is not None:
                skipped += 1
    manifest["derived_skipped"] = skipped
    return manifest


def _copy(partial: Path, folder: sources.Folder, root: Path, name: str, key: Key | None, *,
          derived: bool) -> dict:
    relative = _checked_relative(name)
    try:
        handle = open(root / relative, "rb")
    except FileNotFoundError:
        raise FileVanished(f"{folder.name}/{relative}, named by the database, is missing from "
                           f"{folder.setting}") from None
    with handle:
        stored = _store(partial, f"{folder.name}/{relative}", handle, key)
    return {"folder": folder.name, "path": str(relative), "derived": derived, **stored}


def _copy_settled(partial, folder, root, name, key) -> dict | None | bool:
    """A derived file's entry; None when there is none (never built); False when it was being
    written (left out)."""
    path = root / _checked_relative(name)
    try:
        before = path.stat()
    except FileNotFoundError:
        return None
    if time.time() - before.st_mtime < DERIVED_SETTLE_S:
        return False
    try:
        entry = _copy(partial, folder, root, name, key, derived=True)
    except FileVanished:
        return None
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        (partial / folder.name / entry["path"]).unlink()
        return False
    return entry


def _store(partial: Path, name: str, source: BinaryIO, key: Key | None) -> dict:
    """Write ``source`` to ``partial/name``, sealed with ``key`` if there is one."""
    target_path = partial / name
    target_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(target_path, "xb") as target:
        os.fchmod(target.fileno(), 0o600)
        if key is not None:
            size, sha256 = key.encrypt(name, source, target)
        else:
            digest, size = hashlib.sha256(), 0
            while chunk := source.read(READ_BYTES):
                digest.update(chunk)
                target.write(chunk)
                size += len(chunk)
            sha256 = digest.hexdigest()
    return {"size": size, "sha256": sha256, "stored_size": target_path.stat().st_size}


def _write_manifest(partial: Path, manifest: dict, key: Key | None) -> None:
    data = json.dumps(manifest, indent=1, sort_keys=True).encode()
    if key is not None:
        _write_private(partial / SIGNATURE, (key.sign(data) + "\n").encode())
    _write_private(partial / MANIFEST, data)  # last: a folder with a manifest is complete


def _write_private(path: Path, data: bytes) -> None:
    with open(path, "xb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(data)


def _audit_backup(user, manifest: dict) -> None:
    from webapp.audit import services as audit
    from webapp.audit.models import Action

    with transaction.atomic():
        audit.record(user, Action.BACKUP, detail={**_summary(manifest), "os_user": _os_user()})


# === checking a backup ===========================================================================

def _checked_relative(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or "\\" in name or "\0" in name:
        raise BackupError(f"unsafe file name in the backup: {name!r}")
    return path


def read_manifest(folder: Path, key: Key | None) -> dict:
    """The manifest, checked: format, signature, and whether this code can restore it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise BackupError(f"{folder} is not a folder")
    try:
        data = (folder / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise BackupError(f"{folder} has no {MANIFEST}: not a backup, or an incomplete one") from None
    try:
        manifest = json.loads(data)
        assert isinstance(manifest, dict)
    except (ValueError, AssertionError):
        raise BackupError(f"{MANIFEST} is damaged (not JSON)") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{folder} is not a Pneumothorax Triage backup")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(f"backup format {manifest.get('format_version')!r} is not one this "
                          f"version restores ({FORMAT_VERSION})")
    encryption = manifest.get("encryption")
    if encryption:
        if key is None:
            raise BackupError("this backup is encrypted: set BACKUP_ENCRYPTION_KEY to its key")
        if encryption.get("key_id") != key.key_id or encryption.get("algorithm") != ALGORITHM:
            raise BackupError("this backup was encrypted with another key than "
                              "BACKUP_ENCRYPTION_KEY")
        try:
            signature = (folder / SIGNATURE).read_text()
        except FileNotFoundError:
            raise BackupError(f"{SIGNATURE} is missing: the manifest cannot be trusted") from None
        if not key.verify(data, signature):
            raise BackupError(f"{MANIFEST} was changed after the backup (its HMAC does not match)")
    try:
        _check_shape(manifest)
    except (KeyError, TypeError, ValueError, AttributeError):
        raise BackupError(f"{MANIFEST} is damaged (fields missing or malformed)") from None
    return manifest


def _check_shape(manifest: dict) -> None:
    for entry in [manifest["database"], *manifest["files"]]:
        int(entry["size"]), int(entry["stored_size"]), str(entry["sha256"])
        _checked_relative(entry["path"])
    for entry in manifest["files"]:
        if entry["folder"] not in manifest["folders"]:
            raise ValueError("file of an unknown folder")
    dict(manifest["migrations"]), dict(manifest["counts"])


def entries(manifest: dict) -> list[tuple[str, dict]]:
    """(path in the backup, entry) of the database dump and of every file."""
    found = [(manifest["database"]["path"], manifest["database"])]
    found += [(f"{entry['folder']}/{entry['path']}", entry) for entry in manifest["files"]]
    return found


def plaintext(folder: Path, name: str, entry: dict, key: Key | None) -> Iterator[bytes]:
    """The content of one file of the backup, checked as it is read: raises BackupError at the
    end if its size or SHA-256 is not the manifest's."""
    path = Path(folder) / name
    try:
        handle = open(path, "rb")
    except FileNotFoundError:
        raise BackupError(f"{name} is missing from the backup") from None
    with handle:
        if os.fstat(handle.fileno()).st_size != entry["stored_size"]:
            raise BackupError(f"{name} has the wrong size (damaged or partly copied)")
        digest, size = hashlib.sha256(), 0
        chunks = key.decrypt(name, handle) if key is not None else iter(
            lambda: handle.read(READ_BYTES), b"")
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            yield chunk
    if size != entry["size"] or digest.hexdigest() != entry["sha256"]:
        raise BackupError(f"{name} does not match its checksum (damaged)")


def verify_backup(folder: Path) -> dict:
    """Every check restore makes before it changes anything; returns the manifest."""
    key = encryption_key()
    manifest = read_manifest(folder, key)
    key = key if manifest.get("encryption") else None
    if manifest["database"]["vendor"] != database.vendor():
        raise BackupError(f"this is a {manifest['database']['vendor']} backup; the site's "
                          f"database is {database.vendor()}")
    _check_migrations_known(manifest)
    for name, entry in entries(manifest):
        for _ in plaintext(folder, name, entry, key):
            pass
    return manifest


def _check_migrations_known(manifest: dict) -> None:
    from django.db.migrations.loader import MigrationLoader

    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    for app, names in manifest["migrations"].items():
        for name in names:
            if (app, name) not in known:
                raise BackupError(f"the backup has migration {app}.{name}, which this version "
                                  "does not know: restore it with the version that made it")


# === restore =====================================================================================

def restore_backup(folder: Path, force: bool = False) -> dict:
    folder = Path(folder)
    manifest = verify_backup(folder)
    key = encryption_key() if manifest.get("encryption") else None
    state = database.target_state()
    if state == "data" and not force:
        raise BackupError("the database already holds users, cases or audit rows: restore into "
                          "an empty database, or give --force to replace everything in it")
    roots = {folder_.name: folder_.root() for folder_ in sources.folders()}
    missing = sorted(set(manifest["folders"]) - set(roots))
    if missing:
        raise BackupError(f"the backup has folder(s) {', '.join(missing)} that are not configured "
                          "here (BACKUP_EXTRA_FOLDERS)")
    occupied = [name for name in manifest["folders"] if sources.files_under(roots[name])]
    if occupied and not force:
        raise BackupError(f"{', '.join(manifest['folders'][name] for name in occupied)} is not "
                          "empty: restore into empty folders, or give --force to write over them")

    # Checked: from here on things change. Files first, the database last: its transaction
    # decides, and a restore stopped before it can simply be run again with --force.
    try:
        for name, entry in entries(manifest)[1:]:
            _restore_file(roots[entry["folder"]] / entry["path"],
                          plaintext(folder, name, entry, key))
        db_entry = manifest["database"]
        database.restore(plaintext(folder, db_entry["path"], db_entry, key),
                         clear=state != "empty")
    except (BackupError, OSError) as exc:
        raise RestoreFailed(f"{exc}; it stopped part-way: run it again with --force") from exc
    _audit_restore(manifest)
    return manifest


def _restore_file(target: Path, chunks: Iterator[bytes]) -> None:
    """Write under a temporary name and rename: no half-written file under the real name."""
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    partial = target.with_name(f".{target.name}.restoring")
    try:
        with open(partial, "wb") as handle:
            os.fchmod(handle.fileno(), 0o640)  # as the site's storage writes them
            for chunk in chunks:
                handle.write(chunk)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _audit_restore(manifest: dict) -> None:
    from webapp.audit import services as audit
    from webapp.audit.models import Action

    with transaction.atomic():
        audit.record(None, Action.RESTORE, detail={**_summary(manifest), "os_user": _os_user()})


def pending_migrations() -> int:
    from django.db import connections
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connections["default"])
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def _summary(manifest: dict) -> dict:
    return {"created_at": manifest["created_at"], "database": manifest["database"]["vendor"],
            "files": len(manifest["files"]), "encrypted": bool(manifest.get("encryption")),
            "counts": manifest.get("counts", {})}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        return ""
