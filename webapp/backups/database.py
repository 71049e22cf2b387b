"""The database half of a backup: a snapshot that the dump and the file list share, the dump,
and putting a dump back.

PostgreSQL: pg_dump / pg_restore (custom format), not django-dbbackup. The dump and the list of
files must come from one point in time, and only pg_dump's ``--snapshot`` gives that: this
process opens a REPEATABLE READ transaction, exports its snapshot (``pg_export_snapshot()``),
reads the file names through the ORM in that transaction and has pg_dump dump that same
snapshot. django-dbbackup builds its own pg_dump command line (no snapshot), backs the media up
separately, at another moment, and encrypts with GnuPG and a keyring.

SQLite (the embedded default): the online backup API of Python's sqlite3 copies a consistent
database while the site runs; the file names are then read from that copy, so they agree."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.db import connections, transaction

from .errors import BackupError

SNAPSHOT_ALIAS = "backup_snapshot"
PRODUCT_TABLES = ("accounts_user", "cases_case", "audit_auditevent")  # rows here: data to keep


def vendor() -> str:
    return connections["default"].vendor


def dump_name() -> str:
    return {"postgresql": "database.pgdump", "sqlite": "database.sqlite3"}[_supported()]


def _supported() -> str:
    name = vendor()
    if name not in ("postgresql", "sqlite"):
        raise BackupError(f"backups support PostgreSQL and SQLite, not {name}")
    return name


class Snapshot:
    """Inside ``snapshot()``: ``using`` is the database alias whose ORM queries see the snapshot;
    ``dump(write)`` hands the dump, as a binary stream, to ``write``."""

    using: str

    def dump(self, write: Callable[[BinaryIO], None]) -> None:
        raise NotImplementedError


@contextmanager
def snapshot(workdir: Path):
    if _supported() == "postgresql":
        with _postgres_snapshot() as taken:
            yield taken
    else:
        with _sqlite_snapshot(workdir) as taken:
            yield taken


# --- PostgreSQL ----------------------------------------------------------------------------------

def _tool(name: str) -> str:
    folder = settings.BACKUP_PG_BIN_DIR
    found = str(Path(folder) / name) if folder else shutil.which(name)
    if not found or not os.access(found, os.X_OK):
        raise BackupError(f"{name} not found: install Debian's postgresql-client (the server's "
                          "major version or newer), or set BACKUP_PG_BIN_DIR")
    return found


def libpq_environment() -> dict:
    """How pg_dump / pg_restore reach the site's database: libpq's variables, so the password
    never shows on a command line."""
    database = settings.DATABASES["default"]
    env = dict(os.environ)
    for key, variable in (("NAME", "PGDATABASE"), ("USER", "PGUSER"), ("PASSWORD", "PGPASSWORD"),
                          ("HOST", "PGHOST"), ("PORT", "PGPORT")):
        if database.get(key):
            env[variable] = str(database[key])
    for option, variable in (("sslmode", "PGSSLMODE"), ("sslrootcert", "PGSSLROOTCERT"),
                             ("sslcert", "PGSSLCERT"), ("sslkey", "PGSSLKEY")):
        if database.get("OPTIONS", {}).get(option):
            env[variable] = str(database["OPTIONS"][option])
    return env


def _failure(what: str, stderr: BinaryIO) -> BackupError:
    stderr.seek(0)
    lines = [line for line in stderr.read().decode(errors="replace").splitlines() if line.strip()]
    return BackupError(f"{what} failed: {lines[-1] if lines else 'no message'}")


class _PostgresSnapshot(Snapshot):
    using = "default"

    def __init__(self, snapshot_id: str):
        self.snapshot_id = snapshot_id

    def dump(self, write):
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                [_tool("pg_dump"), "--format=custom", f"--snapshot={self.snapshot_id}",
                 "--no-password"], env=libpq_environment(), stdout=subprocess.PIPE, stderr=stderr)
            try:
                write(process.stdout)
            finally:
                process.stdout.close()
                code = process.wait()
            if code:
                raise _failure("pg_dump", stderr)


@contextmanager
def _postgres_snapshot():
    connection = connections["default"]
    connection.ensure_connection()  # its session set-up runs before, not inside, the snapshot
    with transaction.atomic(using="default"):
        with connection.cursor() as cursor:
            # The first statement of the transaction fixes its snapshot; pg_dump imports it.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            snapshot_id = cursor.fetchone()[0]
        yield _PostgresSnapshot(snapshot_id)


# --- SQLite --------------------------------------------------------------------------------------

class _SqliteSnapshot(Snapshot):
    using = SNAPSHOT_ALIAS

    def __init__(self, copy: Path):
        self.copy = copy

    def dump(self, write):
        _forget_alias()  # closed: the copy is complete on disk, no journal beside it
        with open(self.copy, "rb") as handle:
            write(handle)


@contextmanager
def _sqlite_snapshot(workdir: Path):
    copy = workdir / "snapshot.sqlite3"
    source = sqlite3.connect(settings.DATABASES["default"]["NAME"])
    target = sqlite3.connect(copy)
    try:
        source.backup(target)  # consistent even while the site writes
    finally:
        target.close()
        source.close()
    connections.settings[SNAPSHOT_ALIAS] = {**connections["default"].settings_dict,
                                            "NAME": str(copy), "OPTIONS": {}}
    try:
        yield _SqliteSnapshot(copy)
    finally:
        _forget_alias()
        copy.unlink(missing_ok=True)


def _forget_alias():
    if SNAPSHOT_ALIAS in connections.settings:
        connections[SNAPSHOT_ALIAS].close()
        del connections[SNAPSHOT_ALIAS]
        del connections.settings[SNAPSHOT_ALIAS]


# --- what the snapshot says --------------------------------------------------------------------

def applied_migrations(using: str) -> dict[str, list[str]]:
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT app, name FROM django_migrations ORDER BY app, id")
        rows = cursor.fetchall()
    applied: dict[str, list[str]] = {}
    for app, name in rows:
        applied.setdefault(app, []).append(name)
    return applied


def counts(using: str) -> dict[str, int]:
    from webapp.audit.models import AuditEvent
    from webapp.cases.models import Case, CaseImage, Job
    from webapp.reviews.models import Review

    from django.contrib.auth import get_user_model

    models = {"users": get_user_model(), "cases": Case, "images": CaseImage, "jobs": Job,
              "reviews": Review, "audit_events": AuditEvent}
    return {name: model.objects.using(using).count() for name, model in models.items()}


# --- the target of a restore ------------------------------------------------------------------

def target_state() -> str:
    """'empty' (no tables), 'fresh' (tables, but no user, case or audit row: just migrated) or
    'data'."""
    connection = connections["default"]
    tables = set(connection.introspection.table_names())
    if not tables:
        return "empty"
    with connection.cursor() as cursor:
        for table in PRODUCT_TABLES:
            if table in tables:
                cursor.execute(f"SELECT EXISTS (SELECT 1 FROM {connection.ops.quote_name(table)})")
                if cursor.fetchone()[0]:
                    return "data"
    return "fresh"


def restore(chunks: Iterable[bytes], clear: bool) -> None:
    """Put the dump (its plaintext, chunk by chunk) in place of the site's database; ``clear``:
    remove what is there first (every object of the current schema)."""
    if _supported() == "postgresql":
        _restore_postgres(chunks, clear)
    else:
        _restore_sqlite(chunks)
    connections.close_all()


def _restore_postgres(chunks, clear):
    connection = connections["default"]
    if clear:
        schema = None
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SELECT current_schema()")
                schema = connection.ops.quote_name(cursor.fetchone()[0])
                cursor.execute(f"DROP SCHEMA {schema} CASCADE")
                cursor.execute(f"CREATE SCHEMA {schema}")
        except Exception as exc:  # psycopg's errors, e.g. not the schema's owner
            raise BackupError(f"could not clear the database's schema {schema}: "
                              f"{str(exc).splitlines()[0]}") from exc
    connection.close()
    with tempfile.TemporaryFile() as stderr:
        # One transaction: a dump that fails half-way leaves nothing behind. --no-owner and
        # --no-privileges: the objects belong to the user the site connects as, whatever the
        # role names were on the machine that made the backup.
        process = subprocess.Popen(
            [_tool("pg_restore"), "--single-transaction", "--exit-on-error", "--no-owner",
             "--no-privileges", "--no-password", "--dbname", settings.DATABASES["default"]["NAME"]],
            env=libpq_environment(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=stderr)
        try:
            for chunk in chunks:
                process.stdin.write(chunk)
            process.stdin.close()
        except BrokenPipeError:
            pass  # pg_restore stopped early: its own message says why
        except BaseException:
            process.kill()
            raise
        finally:
            code = process.wait()
        if code:
            raise _failure("pg_restore", stderr)


def _restore_sqlite(chunks):
    name = Path(settings.DATABASES["default"]["NAME"])
    partial = name.with_name(name.name + ".restoring")
    with open(partial, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)
    connections.close_all()
    for suffix in ("-wal", "-shm"):  # the old database's journal must not be replayed on the new
        name.with_name(name.name + suffix).unlink(missing_ok=True)
    os.replace(partial, name)
