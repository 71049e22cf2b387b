"""Backup and restore, tried for real (issue 24): ``manage.py backup`` and ``manage.py restore``
run as the operator runs them, on a PostgreSQL database of this test's own, while a real Celery
worker (the product's, plus the test-only fault hook that keeps one job running) analyses X-rays
uploaded through the submission service.

Then: the database and the media are dropped, damaged copies of the backup are refused without
changing anything, the backup is restored, and every user, case, image, job, review, audit row
and file comes back as it was at the backup's snapshot, with the audit log's append-only trigger.

The embedded default (SQLite) gets the same round trip, without a worker."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.support.connections import database_url, process_environment
from tests.support.data import ARTIFACTS, REPO, subset_image
from tests.support.processes import OwnRedis, fault_celery_worker
from webapp.backups.crypto import generate_key

pytestmark = [pytest.mark.slow]

SLOW_NAME = "fault-slow-backup.png"  # the fault hook keeps this job running (tests/support/fault_worker.py)
TABLES = {  # table: its key, compared row by row
    "accounts_user": "id", "accounts_team": "id", "cases_case": "id", "cases_caseimage": "id",
    "cases_job": "id", "reviews_review": "id", "audit_auditevent": "id",
}


# --- run in a subprocess on the test's own database: data through the real services -----------

def seed() -> None:
    """Users, cases through the submission service (the worker analyses them), reviews, a
    deleted case; then more cases whose jobs are still queued or running when this returns."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from tests.support.stubs import Upload
    from webapp.audit import services as audit
    from webapp.audit.models import Action
    from webapp.cases.models import Job, JobStatus
    from webapp.cases.services.deletion import delete_case
    from webapp.cases.services.submission import submit_case
    from webapp.reviews.services import record_review

    users = get_user_model().objects
    clinician = users.create_user("alice", password="x-backup-test-1", role="clinician")
    admin = users.create_user("root", password="x-backup-test-2", role="admin")
    audit.record(clinician, Action.LOGIN, client_address="10.0.0.1")

    def submit(path: Path, name: str | None = None):
        return submit_case(clinician, [Upload(name or path.name, path.read_bytes())], "10.0.0.1")

    first = [submit(subset_image("dcm", 0)), submit(subset_image("png", 0)),
             submit(subset_image("jpg", 0))]
    deadline = time.monotonic() + 120
    while Job.objects.filter(image__case__in=first).exclude(status=JobStatus.DONE).exists():
        assert time.monotonic() < deadline, "the worker did not analyse the first cases"
        time.sleep(0.2)
    for case, (verdict, label) in zip(first[:2], [("agree", "absent"), ("disagree", "present")]):
        record_review(clinician, case.images.get(), verdict, label, "seen", "10.0.0.1")
    record_review(admin, first[0].images.get(), "agree", "uncertain", "", "10.0.0.2")
    delete_case(clinician, first[2], "10.0.0.1")

    # Analysed while the backup runs; the last one stays running (the fault hook's sleep).
    for index in range(1, 4):
        submit(subset_image("png", index))
    submit(subset_image("png", 4), SLOW_NAME)


def refusals() -> None:
    """For each {case: [backup folder, key]} read from stdin, the restore command's error
    (None if it did not refuse), as one JSON line."""
    import django

    django.setup()
    from django.core.management import CommandError, call_command
    from django.test import override_settings

    found = {}
    for what, (folder, key) in json.load(sys.stdin).items():
        with override_settings(BACKUP_ENCRYPTION_KEY=key):
            try:
                call_command("restore", folder)
                found[what] = None
            except CommandError as exc:
                found[what] = str(exc)
    print(json.dumps(found))


def test_every_file_field_is_backed_up():
    from django.apps import apps
    from django.db.models import FileField

    from webapp.backups.sources import MEDIA_FILE_FIELDS

    found = {}
    for model in apps.get_models():
        fields = tuple(field.name for field in model._meta.get_fields()
                       if isinstance(field, FileField))
        if fields:
            found[model._meta.label_lower] = fields
    assert found == MEDIA_FILE_FIELDS


# --- helpers -------------------------------------------------------------------------------------

def manage(env: dict, *args: str, check: bool = True, timeout: float = 180) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


def start_manage(env: dict, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def checksums(root: Path) -> dict[str, str]:
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(root.rglob("*")) if path.is_file()}


class Server:
    """The PostgreSQL server the tests use, reached with psycopg (no Django: the database under
    test is not pytest-django's)."""

    def __init__(self, settings_dict: dict):
        self.settings = settings_dict

    def url(self, name: str) -> str:
        return database_url({**self.settings, "NAME": name})

    def connect(self, name: str, autocommit: bool = True):
        import psycopg

        return psycopg.connect(self.url(name), autocommit=autocommit)

    def recreate(self, name: str) -> None:
        with self.connect("postgres") as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            connection.execute(f'CREATE DATABASE "{name}"')

    def drop(self, name: str) -> None:
        with self.connect("postgres") as connection:
            connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def rows(self, name: str) -> dict[str, dict]:
        found = {}
        with self.connect(name) as connection:
            for table, key in TABLES.items():
                cursor = connection.execute(f"SELECT * FROM {table} ORDER BY {key}")
                columns = [column.name for column in cursor.description]
                found[table] = {row[columns.index(key)]: dict(zip(columns, row))
                                for row in cursor.fetchall()}
        return found

    def tables(self, name: str) -> list[str]:
        with self.connect(name) as connection:
            return [row[0] for row in connection.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]


def named_files(rows: dict) -> set[str]:
    names = set()
    for image in rows["cases_caseimage"].values():
        names |= {image["original"], image["preview"]}
    for job in rows["cases_job"].values():
        names |= {job["mask"], job["overlay"]}
    return names - {""}


# --- PostgreSQL, while a worker runs ---------------------------------------------------------

@pytest.fixture
def own_site(settings, tmp_path):
    """A database, a broker and a media folder of this test's own (the pytest-django database
    lives inside a transaction; pg_dump must see committed data)."""
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("the backup test needs PostgreSQL (DATABASE_URL)")
    server = Server(settings.DATABASES["default"])
    name = f"{settings.DATABASES['default']['NAME']}_backup_{os.getpid()}"[:63]
    server.recreate(name)
    redis = OwnRedis(tmp_path / "redis").start()
    media = tmp_path / "media"
    env = process_environment(settings, database=server.url(name), broker=redis.url,
                              PRIVATE_MEDIA_ROOT=str(media), BACKUP_ENCRYPTION_KEY="",
                              DJANGO_LOG_LEVEL="WARNING")
    try:
        yield server, name, env, media
    finally:
        redis.kill()
        server.drop(name)


@pytest.mark.e2e
def test_backup_while_jobs_run_then_restore_everything(own_site, tmp_path):
    server, name, env, media = own_site
    started = time.monotonic()
    key = generate_key()
    key_command = start_manage(env, "backup", "--generate-key")  # the operator's way to make one
    keyed = {**env, "BACKUP_ENCRYPTION_KEY": key}

    worker = fault_celery_worker({**env, "TRIAGE_TEST_FAULTS": "1", "TRIAGE_TEST_SLOW_S": "300"},
                                 ARTIFACTS / "backup-worker.log")
    problems = []
    starting = threading.Thread(target=lambda: _start(worker, problems))
    try:
        starting.start()  # loading the model overlaps the migrations
        manage(env, "migrate", "--no-input", "-v0")
        starting.join()
        assert len(base64.urlsafe_b64decode(key_command.communicate(timeout=120)[0].strip())) == 32
        assert not problems, problems
        worker_ready = time.monotonic() - started
        subprocess.run([sys.executable, "-c", f"import {__name__} as t; t.seed()"], cwd=REPO,
                       env={**env, "PYTHONPATH": str(REPO)}, check=True, timeout=300)

        # 1. The backup, while the worker analyses the last cases.
        backup = tmp_path / "backups" / "nightly"
        made = manage(keyed, "backup", "--out", str(backup))
        assert f"backup written to {backup}" in made.stdout and "encrypted" in made.stdout

        # Freeze the site: once the slow job runs, nothing else writes; the worker goes.
        _wait_until_only_the_slow_job_runs(server, name)
    finally:
        if worker.process is not None:
            worker.kill_all()  # SIGKILL: the slow job is left running, as in the snapshot
    live = server.rows(name)
    live_files = checksums(media)
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["encryption"]["algorithm"] == "AES-256-GCM"
    assert {entry["path"] for entry in manifest["files"]} <= set(live_files)

    # 2. Drop the database and the media.
    server.recreate(name)
    shutil.rmtree(media)

    # A damaged or partial backup, or one without its key, is refused before anything changes
    # (one process runs the restore command on each: a Django start-up per case is slow).
    cases = {what: (str(path), key) for what, path in _damaged_copies(
        backup, manifest, tmp_path / "damaged").items()}
    cases["no key"] = (str(backup), "")
    cases["wrong key"] = (str(backup), generate_key())
    expected = {"flipped byte": "does not decrypt", "missing file": "is missing from the backup",
                "truncated dump": "has the wrong size", "no manifest": "has no manifest.json",
                "edited manifest": "HMAC does not match",
                "no key": "encrypted: set BACKUP_ENCRYPTION_KEY",
                "wrong key": "encrypted with another key"}
    refused = subprocess.run(
        [sys.executable, "-c", f"import {__name__} as t; t.refusals()"], cwd=REPO,
        env={**env, "PYTHONPATH": str(REPO)}, input=json.dumps(cases), capture_output=True,
        text=True, timeout=300)
    assert refused.returncode == 0, refused.stderr
    messages = json.loads(last_line(refused.stdout))
    for what, message in messages.items():
        assert message.startswith("restore refused: ") and expected[what] in message, (what, message)
    assert messages.keys() == expected.keys()
    assert server.tables(name) == [] and not media.exists()

    # 3. Restore.
    restored = manage(keyed, "restore", str(backup))
    assert "restored: backup of" in restored.stdout
    back = server.rows(name)

    # 4. Everything comes back as the snapshot saw it.
    for table in ("accounts_user", "accounts_team", "cases_case", "cases_caseimage",
                  "reviews_review"):
        assert back[table] == live[table], table
    assert len(back["cases_case"]) == 6 and len(back["reviews_review"]) == 3
    states = {job["status"] for job in back["cases_job"].values()}
    assert "done" in states and states & {"queued", "running"}, states  # jobs ran meanwhile
    assert back["cases_job"].keys() == live["cases_job"].keys()
    for pk, job in back["cases_job"].items():
        if job != live["cases_job"][pk]:  # finished after the snapshot: an earlier state
            assert job["status"] in ("queued", "running") and not job["mask"], job
    # The audit log: the snapshot's rows, identical; then the restore's own row.
    before, after = live["audit_auditevent"], back["audit_auditevent"]
    assert [row["action"] for pk, row in before.items() if after.get(pk) != row] == ["backup"]
    assert [row["action"] for pk, row in after.items() if before.get(pk) != row] == ["restore"]
    assert {"upload", "review", "delete", "login"} <= {row["action"] for row in after.values()}
    # Every file the restored database names is there, with its checksum.
    back_files = checksums(media)
    assert named_files(back) <= set(back_files)
    assert all(live_files[path] == digest for path, digest in back_files.items())
    assert any("/mask-" in path for path in back_files)

    # 5. The audit log's append-only guard came back with the dump.
    import psycopg

    with server.connect(name) as connection:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            connection.execute("UPDATE audit_auditevent SET username = 'rewritten'")
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            connection.execute("DELETE FROM audit_auditevent")

    # A database that holds data is not overwritten without --force.
    again = manage(keyed, "restore", str(backup), check=False)
    assert again.returncode != 0 and "already holds" in last_line(again.stderr)
    # --force replaces it: the schema is cleared and the dump restored in its place.
    manage(keyed, "restore", "--force", str(backup))
    forced = server.rows(name)
    assert all(forced[table] == back[table] for table in TABLES if table != "audit_auditevent")
    assert [row["action"] for pk, row in forced["audit_auditevent"].items()
            if before.get(pk) != row] == ["restore"]
    with server.connect(name) as connection:
        with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
            connection.execute("DELETE FROM audit_auditevent")
    print(f"worker ready after {worker_ready:.0f} s; whole test {time.monotonic() - started:.0f} s")


def _start(worker, problems: list) -> None:
    try:
        worker.start()
    except Exception as exc:  # reported by the test's thread
        problems.append(str(exc)[-3000:])


def _wait_until_only_the_slow_job_runs(server: Server, name: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server.connect(name) as connection:
            states = dict(connection.execute(
                "SELECT i.original_name, j.status FROM cases_job j "
                "JOIN cases_caseimage i ON i.id = j.image_id").fetchall())
        if states[SLOW_NAME] == "running" and all(
                status == "done" for image, status in states.items() if image != SLOW_NAME):
            return
        time.sleep(0.3)
    pytest.fail(f"the worker did not finish the other jobs: {states}")


def _damaged_copies(backup: Path, manifest: dict, folder: Path) -> dict[str, Path]:
    media_file = next(entry for entry in manifest["files"] if entry["folder"] == "media")
    media_path = f"media/{media_file['path']}"
    copies = {}
    for what in ("flipped byte", "missing file", "truncated dump", "no manifest",
                 "edited manifest"):
        copy = folder / what.replace(" ", "-")
        shutil.copytree(backup, copy)
        copies[what] = copy
    flipped = copies["flipped byte"] / media_path
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0x01
    flipped.write_bytes(bytes(data))
    (copies["missing file"] / media_path).unlink()
    dump = copies["truncated dump"] / manifest["database"]["path"]
    dump.write_bytes(dump.read_bytes()[:-100])
    (copies["no manifest"] / "manifest.json").unlink()
    edited = copies["edited manifest"] / "manifest.json"
    edited_manifest = json.loads(edited.read_text())
    edited_manifest["files"] = [entry for entry in edited_manifest["files"] if entry != media_file]
    edited.write_text(json.dumps(edited_manifest))
    return copies


# --- SQLite, the embedded default ----------------------------------------------------------------

def seed_one_case() -> None:
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from tests.support.stubs import Upload
    from webapp.cases.services.submission import submit_case

    user = get_user_model().objects.create_user("alice", password="x-backup-test-1")
    path = subset_image("png")
    submit_case(user, [Upload(path.name, path.read_bytes())], "10.0.0.1")


def test_sqlite_round_trip_unencrypted(settings, tmp_path):
    """Without a key: a warning, and the checksums still refuse a damaged backup."""
    import sqlite3

    media, database = tmp_path / "media", tmp_path / "db.sqlite3"
    env = process_environment(settings, database=f"sqlite:///{database}", broker="memory://",
                              PRIVATE_MEDIA_ROOT=str(media), BACKUP_ENCRYPTION_KEY="",
                              DJANGO_LOG_LEVEL="WARNING")
    manage(env, "migrate", "--no-input", "-v0")
    subprocess.run([sys.executable, "-c", f"import {__name__} as t; t.seed_one_case()"],
                   cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, check=True, timeout=120)
    live_files = checksums(media)
    made = manage(env, "backup", "--out", str(tmp_path / "b"))
    assert "NOT encrypted" in made.stderr and "NOT encrypted" in made.stdout
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["database"]["vendor"] == "sqlite" and manifest["encryption"] is None
    assert manifest["counts"]["images"] == 1
    assert {entry["path"]: entry["sha256"] for entry in manifest["files"]} == live_files
    with sqlite3.connect(database) as connection:
        live_rows = connection.execute("SELECT * FROM cases_caseimage").fetchall()

    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "b", damaged)
    dump = damaged / "database.sqlite3"
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0x01
    dump.write_bytes(bytes(data))

    database.unlink()
    shutil.rmtree(media)
    refused = manage(env, "restore", str(damaged), check=False)
    assert refused.returncode != 0 and "does not match its checksum" in last_line(refused.stderr)
    assert not media.exists() and (not database.exists() or database.stat().st_size == 0)

    manage(env, "restore", str(tmp_path / "b"))
    assert checksums(media) == live_files
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT * FROM cases_caseimage").fetchall() == live_rows
        actions = [row[0] for row in connection.execute(
            "SELECT action FROM audit_auditevent ORDER BY id")]
    assert actions == ["upload", "restore"]

    # A file the database names that is lost from storage: no backup, and the file named (by id).
    lost = next(iter(live_files))
    (media / lost).unlink()
    failed = manage({**env, "BACKUP_ATTEMPTS": "2"}, "backup", "--out", str(tmp_path / "c"),
                    check=False)
    assert failed.returncode != 0 and not (tmp_path / "c").exists()
    assert last_line(failed.stderr) == (
        f"CommandError: backup failed: media/{lost}, named by the database, is missing from "
        "PRIVATE_MEDIA_ROOT in each of 2 attempts: it is lost from storage (not a deletion in "
        "progress); no backup was written")
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".c.")] == []
