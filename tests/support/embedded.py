"""The product on its embedded defaults, as ``scripts/run`` starts it on a machine with nothing
else: SQLite in a file and kombu's filesystem broker in a folder, a real gunicorn and a real
Celery worker (the product's, from the test-only entry point tests.support.fault_worker), each a
subprocess. Used by the tests that must hold on every
supported set-up, not only on PostgreSQL + Redis."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.support.data import REPO
from tests.support.processes import (CeleryWorker, fault_celery_worker, free_port, start_gunicorn,
                                     stop_process)


class EmbeddedSite:
    def __init__(self, folder: Path, faults: bool = False):
        self.folder = folder
        self.database = folder / "db.sqlite3"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.web = None
        self.env = {
            **{k: v for k, v in os.environ.items()
               if k not in ("CELERY_BROKER_WRITE_URL", "DATABASE_URL", "CELERY_BROKER_URL")},
            # The test settings (quick password hashing) on the embedded defaults' engines; the
            # worker starts from the test-only entry point, its fault hook on if ``faults``.
            "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
            "DATABASE_URL": f"sqlite:///{self.database}",
            "CELERY_BROKER_URL": "filesystem://localhost/",
            "CELERY_BROKER_DIR": str(folder / "broker"),
            "PRIVATE_MEDIA_ROOT": str(folder / "media"),
            "INFERENCE_THREADS": os.environ.get("INFERENCE_THREADS", "2"),
            "TRIAGE_TEST_FAULTS": "1" if faults else "0",
            "TRIAGE_TEST_SLOW_S": "8",
        }
        self.manage("migrate", "--noinput", "-v", "0")

    def manage(self, *args: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=self.env,
                                capture_output=True, text=True, timeout=300)
        if result.returncode:
            pytest.fail(f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result.stdout

    def create_user(self, username: str, password: str) -> None:
        self.manage("shell", "-c",
                    "from webapp.accounts.models import User; "
                    f"User.objects.create_user({username!r}, password={password!r})")

    def query(self, sql: str, *params):
        with sqlite3.connect(self.database, timeout=30) as connection:
            return connection.execute(sql, params).fetchall()

    def start_web(self, log_path: Path) -> None:
        self.web = start_gunicorn(self.env, self.port, log_path, "--config", "deploy/gunicorn.conf.py",
                                  "--workers", "2", "--threads", "8")

    def worker(self, log_path: Path) -> CeleryWorker:
        return fault_celery_worker(self.env, log_path)

    def login(self, username: str, password: str) -> requests.Session:
        session = requests.Session()
        page = session.get(f"{self.url}/login/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(f"{self.url}/login/", timeout=10, allow_redirects=False,
                                data={"username": username, "password": password,
                                      "csrfmiddlewaretoken": token})
        assert response.status_code == 302, response.text[:2000]
        return session

    def upload(self, session: requests.Session, files: list[tuple[str, bytes]]) -> str:
        """The case id of a new case with these files, uploaded through the real form."""
        form = session.get(f"{self.url}/cases/new/", timeout=10)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        response = session.post(f"{self.url}/cases/new/", timeout=120, allow_redirects=False,
                                data={"csrfmiddlewaretoken": token},
                                files=[("images", (name, data)) for name, data in files],
                                headers={"Referer": f"{self.url}/cases/new/"})
        assert response.status_code == 302, response.text[:2000]
        return response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]

    def stop(self) -> None:
        if self.web:
            stop_process(self.web, timeout=20)
