"""Bounded load test on loopback: N uploads from C concurrent clients against gunicorn
(2 workers) and one Celery worker (concurrency 1), PostgreSQL + a Redis of its own.

Each client logs in, then repeatedly uploads one X-ray from the shared subset and polls the
case's status.json once a second (as the case page does) until the job has finished. The run
passes when every case completes (done), no response is 5xx, and nothing is lost; it reports
p50/p95/max latency of the upload POST and of the status view.

    .venv/bin/python bench/load_test.py --uploads 200 --clients 20

Uses a fresh database ``triage_bench`` on the PostgreSQL of DATABASE_ADMIN_URL (default
postgres://postgres@127.0.0.1:5432/postgres), its own redis-server on a free port, and a
temporary media folder; writes bench/results/load_test.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.data import REPO, subset_images  # noqa: E402
from tests.support.processes import (CeleryWorker, OwnRedis, free_port, start_gunicorn,  # noqa: E402
                                     stop_process)

PYTHON = sys.executable


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary(values):
    return {"n": len(values), "p50_ms": round(percentile(values, 50) * 1000, 1),
            "p95_ms": round(percentile(values, 95) * 1000, 1),
            "max_ms": round(max(values) * 1000, 1),
            "mean_ms": round(statistics.mean(values) * 1000, 1)} if values else {"n": 0}


class Bench:
    def __init__(self, args):
        self.args = args
        self.lock = threading.Lock()
        self.next_upload = 0
        self.upload_times, self.status_times = [], []
        self.codes: dict[int, int] = {}
        self.cases: dict[str, str] = {}  # case id -> final status
        self.errors: list[str] = []
        self.files = sorted(p for ext in ("png", "jpg", "dcm") for p in subset_images(ext))[:60]
        self.payloads = [(p.name, p.read_bytes()) for p in self.files]

    def count(self, code):
        with self.lock:
            self.codes[code] = self.codes.get(code, 0) + 1

    def take(self):
        with self.lock:
            if self.next_upload >= self.args.uploads:
                return None
            self.next_upload += 1
            return self.next_upload - 1

    def client(self, base, username, password):
        session = requests.Session()
        page = session.get(f"{base}/login/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(f"{base}/login/", data={"username": username, "password": password,
                                "csrfmiddlewaretoken": token}, headers={"Referer": f"{base}/login/"},
                                timeout=30, allow_redirects=False)
        assert response.status_code == 302, response.status_code
        form = session.get(f"{base}/cases/new/", timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
        while (index := self.take()) is not None:
            name, data = self.payloads[index % len(self.payloads)]
            started = time.perf_counter()
            response = session.post(f"{base}/cases/new/", files={"images": (name, data)},
                                    data={"csrfmiddlewaretoken": token},
                                    headers={"Referer": f"{base}/cases/new/"},
                                    timeout=120, allow_redirects=False)
            elapsed = time.perf_counter() - started
            self.count(response.status_code)
            if response.status_code != 302:
                self.errors.append(f"upload {index}: HTTP {response.status_code}")
                continue
            with self.lock:
                self.upload_times.append(elapsed)
            case_id = response.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
            deadline = time.monotonic() + self.args.case_timeout
            status = "queued"
            while time.monotonic() < deadline:
                started = time.perf_counter()
                reply = session.get(f"{base}/cases/{case_id}/status.json", timeout=60)
                elapsed = time.perf_counter() - started
                self.count(reply.status_code)
                if reply.status_code == 200:
                    with self.lock:
                        self.status_times.append(elapsed)
                    status = reply.json()["status"]
                    if status in ("done", "failed"):
                        break
                else:
                    self.errors.append(f"status {case_id}: HTTP {reply.status_code}")
                time.sleep(1.0)
            with self.lock:
                self.cases[case_id] = status


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--uploads", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--case-timeout", type=float, default=900)
    parser.add_argument("--admin-db", default=os.environ.get(
        "DATABASE_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--db-name", default="triage_bench")
    parser.add_argument("--output", default=str(REPO / "bench" / "results" / "load_test.json"))
    args = parser.parse_args()

    import psycopg

    workdir = Path(tempfile.mkdtemp(prefix="triage-load-"))
    with psycopg.connect(args.admin_db, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{args.db_name}"')
    db_url = args.admin_db.rsplit("/", 1)[0] + "/" + args.db_name
    redis_server, web_port = OwnRedis(workdir), free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings.test", "DATABASE_URL": db_url,
           "CELERY_BROKER_URL": redis_server.url,
           "PRIVATE_MEDIA_ROOT": str(workdir / "media"), "INFERENCE_THREADS": "2",
           "DJANGO_LOG_LEVEL": "WARNING"}
    web = worker = None
    try:
        redis_server.start()
        subprocess.run([PYTHON, "manage.py", "migrate", "-v", "0"], cwd=REPO, env=env, check=True)
        password = "load-test-password-42"
        subprocess.run([PYTHON, "manage.py", "shell", "-v", "0", "-c",
                        "from webapp.accounts.models import User\n"
                        "u = User(username='loadtest'); u.set_password(%r); u.save()" % password],
                       cwd=REPO, env=env, check=True)
        worker = CeleryWorker(env, workdir / "worker.log", hostname="load@%h").start()
        web = start_gunicorn(env, web_port, workdir / "web.log", "-w", str(args.gunicorn_workers),
                             "--timeout", "120", timeout=120)
        base = f"http://127.0.0.1:{web_port}"

        bench = Bench(args)
        started = time.monotonic()
        threads = [threading.Thread(target=bench.client, args=(base, "loadtest", password))
                   for _ in range(args.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.monotonic() - started

        # The database is the truth: count what it holds.
        out = subprocess.run([PYTHON, "manage.py", "shell", "-v", "0", "-c",
                              "from webapp.cases.models import Job, Case\n"
                              "from django.db.models import Count\n"
                              "print(Case.objects.count(), dict(Job.objects.values_list('status')"
                              ".annotate(n=Count('id'))), max(Job.objects.values_list('attempts', flat=True)))"],
                             cwd=REPO, env=env, check=True, capture_output=True, text=True)
        five_xx = sum(n for code, n in bench.codes.items() if code >= 500)
        final = {}
        for status in bench.cases.values():
            final[status] = final.get(status, 0) + 1
        result = {
            "command": " ".join(["python", "bench/load_test.py"] + sys.argv[1:]),
            "uploads": args.uploads, "clients": args.clients,
            "gunicorn_workers": args.gunicorn_workers, "celery_workers": 1,
            "wall_s": round(wall, 1), "throughput_cases_per_min": round(len(bench.cases) / wall * 60, 1),
            "http_status_counts": {str(k): v for k, v in sorted(bench.codes.items())},
            "responses_5xx": five_xx, "cases_final_status": final,
            "database": out.stdout.strip(),
            "upload_post": summary(bench.upload_times), "status_json": summary(bench.status_times),
            "errors": bench.errors[:20],
            "passed": five_xx == 0 and final.get("done", 0) == args.uploads and not bench.errors,
        }
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        return 0 if result["passed"] else 1
    finally:
        if web:
            stop_process(web)
        if worker:
            worker.stop()
        redis_server.kill()
        shutil.rmtree(workdir, ignore_errors=True)
        try:
            with psycopg.connect(args.admin_db, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
        except Exception:
            pass


if __name__ == "__main__":
    sys.exit(main())
