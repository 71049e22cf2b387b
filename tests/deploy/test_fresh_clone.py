"""A fresh clone, used through Django's own entry points and not through ``scripts/run``: the
embedded defaults (SQLite and the secret key under ``var/``) must make their own folders, and the
tree must hold no logs or scratch output."""

import os
import re
import subprocess
import sys

import pytest

from tests.support.data import REPO

pytestmark = pytest.mark.slow

# What an evaluation, a profiler or a crashed run leaves behind: never source.
SCRATCH = re.compile(r"(\.log|\.prof|\.out|\.tmp|\.swp|~|\.sqlite3|\.pyc|\.orig|\.rej)$")


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    clone = tmp_path_factory.mktemp("clone") / "triage"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], check=True)
    return clone


def manage(clone, *args):
    """``python manage.py …`` in the clone with this suite's interpreter and none of the suite's
    database, broker or settings variables: what a newcomer types after cloning."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("DJANGO_", "DATABASE_URL", "CELERY_", "PRIVATE_MEDIA_ROOT"))}
    env.update({"DJANGO_SUPERUSER_USERNAME": "first-admin", "DJANGO_SUPERUSER_EMAIL": "admin@example.org",
                "DJANGO_SUPERUSER_PASSWORD": "fresh-clone-password-7"})
    return subprocess.run([sys.executable, "manage.py", *args], cwd=clone, env=env,
                          capture_output=True, text=True, timeout=300)


def test_bare_entry_points_work_in_a_fresh_clone_on_the_embedded_defaults(fresh_clone):
    assert not (fresh_clone / "var").exists()  # nothing made it for us
    for command in (["migrate", "--noinput"], ["check"], ["createsuperuser", "--noinput"]):
        done = manage(fresh_clone, *command)
        assert done.returncode == 0, (command, done.stdout, done.stderr)
    assert (fresh_clone / "var" / "db.sqlite3").is_file()
    shell = manage(fresh_clone, "shell", "-c",
                   "from django.contrib.auth import get_user_model; "
                   "print(get_user_model().objects.get(username='first-admin').is_superuser)")
    assert shell.stdout.strip().splitlines()[-1] == "True", (shell.stdout, shell.stderr)


def test_no_logs_or_scratch_files_are_tracked():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert [path for path in tracked if SCRATCH.search(path)] == []


def test_gitignore_keeps_logs_out():
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "sev_new.log", "ml/eval.log"],
                             cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == ["sev_new.log", "ml/eval.log"]
