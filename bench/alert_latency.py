"""Upload -> the review-first webhook's arrival, for 20 real films, on the embedded defaults.

    .venv/bin/python bench/alert_latency.py [--films 20]

What runs, as ``scripts/run`` starts it on a bare machine: SQLite in a file and kombu's
filesystem broker in a folder (a temporary folder, not var/), ``webapp.settings.local`` (DEBUG
off), ``gunicorn webapp.wsgi --config deploy/gunicorn.conf.py`` on 127.0.0.1 and one
``celery -A workers worker`` with no ``-Q`` (so it consumes the inference queue and the
``alerts`` queue, as scripts/run's worker does; concurrency 1: one model). ALERT_WEBHOOK_URL
points at a loopback HTTP receiver in this process, which notes each arrival's time and
verifies its X-Triage-Signature (HMAC-SHA256 of the exact body with ALERT_WEBHOOK_SECRET).

Films: labelled positives of the shared SIIM-ACR subset, the largest pneumothoraces first (those
the model calls), one per patient, DICOMs first. Each is uploaded through the REST API
(``POST /api/v1/cases/``, token) one at a time, after the previous one's alert arrived: the
latency of one alert on an idle site, not of a queue. A film the model does not flag review
first makes no alert: it is counted and replaced by the next, until ``--films`` alerts arrived.
One film first, not counted, warms the worker up (first forward pass, lazy imports).
``--burst`` uploads the films all at once instead (a ward's morning films): each alert then
waits behind the analyses queued before it in the one worker process (written to
alert_latency-burst.json; films that make no alert are counted, not replaced).
``--alerts-worker`` runs the inference worker on ``-Q cpu`` and a second, light worker (no
model) on ``-Q alerts,dicom``, as docker-compose's dicom-sender does: alerts then never wait
behind an analysis.

Reported, median and p95 over the films: ``upload_to_arrival_s`` (upload POST start -> webhook
arrival), ``beyond_inference_s`` (the job's ``finished_at`` -> arrival: the commit, the alert
tasks' two hops through the broker, the HTTP POST), and the model's forward pass. The bar: p95
of beyond_inference under 10 s. Checked: every signature verifies, no film alerts twice.
Written to bench/results/alert_latency.json.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import hmac
import json
import os
import platform
import secrets
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.data import REPO, SHARED_DATA  # noqa: E402
from tests.support.processes import (CeleryWorker, ProcessError, free_port,  # noqa: E402
                                     start_gunicorn, stop_process)

BAR_S = 10.0
MAX_UPLOADS_PER_ALERT = 3  # give up when the films do not make alerts (a wrong model, a bug)
FILM_TIMEOUT_S = 180  # one film, upload to alert, on a busy 2-core machine


class Receiver:
    """A webhook receiver on 127.0.0.1: each POST's arrival time (wall clock, to compare with
    the database's ``finished_at``), its body, and whether its signature verified."""

    def __init__(self, secret: str):
        self.secret, self.arrivals, self.lock = secret.encode(), [], threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                expected = "sha256=" + hmac.new(receiver.secret, body, hashlib.sha256).hexdigest()
                verified = hmac.compare_digest(expected, self.headers.get("X-Triage-Signature", ""))
                self.send_response(200 if verified else 401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with receiver.lock:
                    receiver.arrivals.append({"at": arrived, "verified": verified,
                                              "payload": json.loads(body) if verified else None})
                    receiver.lock.notify_all()

            def log_message(self, *args):  # quiet: the bench prints its own lines
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/triage-alerts"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_image(self, image_id: str) -> list[dict]:
        with self.lock:
            return [a for a in self.arrivals if a["payload"] and a["payload"]["image_id"] == image_id]

    def wait(self, predicate, timeout: float):
        with self.lock:
            return self.lock.wait_for(predicate, timeout)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def environment(folder: Path, web_port: int, receiver: Receiver, secret: str) -> dict:
    return {
        **{k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL",
                        "DJANGO_SETTINGS_MODULE")},
        # scripts/run's settings and defaults; the files in a folder of the bench's own.
        "DJANGO_SETTINGS_MODULE": "webapp.settings.local",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://localhost/",
        "CELERY_BROKER_DIR": str(folder / "broker"),
        "PRIVATE_MEDIA_ROOT": str(folder / "media"),
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "PATIENT_KEY_SECRET": secrets.token_urlsafe(40),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": f"http://127.0.0.1:{web_port}",
        "ALERT_WEBHOOK_URL": receiver.url,
        "ALERT_WEBHOOK_SECRET": secret,
        "API_THROTTLE_USER": "100000/hour",
        "INFERENCE_THREADS": os.environ.get("INFERENCE_THREADS", "2"),
    }


def prepare(env: dict) -> str:
    """Migrate the new SQLite database; a clinician and an API token for them."""
    python = [sys.executable, "manage.py"]
    subprocess.run(python + ["migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
    code = ("from webapp.accounts.models import User; from webapp.accounts.services import issue_token;"
            "u = User.objects.create_user('bench', password='bench-password-9');"
            "print(issue_token(u, name='bench')[1])")
    return subprocess.run(python + ["shell", "-c", code], cwd=REPO, env=env, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]


def candidate_films() -> list[Path]:
    """Labelled positives, largest pneumothorax first, one per patient, DICOMs first."""
    with open(SHARED_DATA / "labels.csv", newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r["has_pneumothorax"] == "1"
                and (SHARED_DATA / r["image"]).is_file()]
    rows.sort(key=lambda r: (not r["image"].endswith(".dcm"), -int(r["mask_pixels"] or 0), r["image_id"]))
    chosen, patients = [], set()
    for row in rows:
        if row["patient_id"] not in patients:
            patients.add(row["patient_id"])
            chosen.append(SHARED_DATA / row["image"])
    return chosen


def job_row(database: Path, image_id: str) -> dict | None:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30) as connection:
        row = connection.execute(
            "SELECT status, review_first, finished_at, timings_ms, probability FROM cases_job "
            "WHERE image_id = ?", (image_id.replace("-", ""),)).fetchone()
    if row is None:
        return None
    status, review_first, finished_at, timings_ms, probability = row
    finished = (datetime.fromisoformat(finished_at).replace(tzinfo=timezone.utc).timestamp()
                if finished_at else None)
    return {"status": status, "review_first": bool(review_first), "finished_at": finished,
            "timings_ms": json.loads(timings_ms or "{}"), "probability": probability}


def start_light_worker(env: dict, log_path: Path) -> subprocess.Popen:
    """``celery -A workers worker -Q alerts,dicom``: network work only, so no model is loaded
    (workers.startup); ready once its log says so."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers", "worker", "--loglevel=INFO",
             "-Q", "alerts,dicom", "--concurrency=2", f"--hostname=alerts-bench-{os.getpid()}@%h",
             "--without-gossip", "--without-mingle"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ProcessError(f"the alerts worker exited:\n{log_path.read_text()[-3000:]}")
        if " ready." in log_path.read_text(errors="replace"):
            return process
        time.sleep(0.3)
    stop_process(process)
    raise ProcessError(f"the alerts worker was not ready:\n{log_path.read_text()[-3000:]}")


def upload(session: requests.Session, url: str, path: Path) -> dict:
    """One film through the REST API: its image id, when the POST began and ended."""
    started = time.time()
    with open(path, "rb") as handle:
        response = session.post(f"{url}/api/v1/cases/", files={"images": (path.name, handle)}, timeout=120)
    if response.status_code != 201:
        raise SystemExit(f"upload of {path.name} failed: HTTP {response.status_code} {response.text[:300]}")
    return {"path": path, "image_id": response.json()["images"][0]["id"], "started": started,
            "uploaded": time.time()}


def outcome(database: Path, receiver: Receiver, film: dict, deadline: float) -> dict:
    """Wait for the film's alert, or for a result that makes none."""
    image_id, name = film["image_id"], film["path"].name
    job = None
    while time.time() < deadline:
        if receiver.wait(lambda: receiver.for_image(image_id), timeout=0.5):
            break
        job = job_row(database, image_id)
        if job and job["status"] == "failed":
            raise SystemExit(f"the analysis of {name} failed")
        if job and job["status"] == "done" and not job["review_first"]:
            return {"file": name, "image_id": image_id, "review_first": False,
                    "probability": job["probability"]}
    else:
        raise SystemExit(f"no alert for {name} in time (job: {job})")
    [arrival] = receiver.for_image(image_id)[:1]
    job = job_row(database, image_id)
    return {
        "file": name, "image_id": image_id, "review_first": True,
        "probability": job["probability"], "reason": arrival["payload"]["reason"],
        "upload_s": round(film["uploaded"] - film["started"], 3),
        "upload_to_arrival_s": round(arrival["at"] - film["started"], 3),
        "beyond_inference_s": round(arrival["at"] - job["finished_at"], 3),
        "inference_s": round(job["timings_ms"].get("inference", 0) / 1000, 3),
        "worker_stages_ms": job["timings_ms"],
    }


def one_film(session, url, database, receiver, path) -> dict:
    film = upload(session, url, path)
    return outcome(database, receiver, film, film["started"] + FILM_TIMEOUT_S)


def report(run: dict, number: int) -> None:
    print(f"  {number:2d} {run['file'][-24:]:>24}  upload->alert {run['upload_to_arrival_s']:6.2f} s"
          f"  beyond inference {run['beyond_inference_s']:5.2f} s  inference {run['inference_s']:5.2f} s",
          flush=True)


def p95(values: list[float]) -> float:
    """Linear interpolation between the closest ranks (as webapp.alerts.timings.percentile)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * 0.95
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def figures(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "p95": round(p95(values), 3),
            "max": round(max(values), 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--films", type=int, default=20)
    parser.add_argument("--burst", action="store_true",
                        help="upload all the films at once instead of one after the other's alert "
                             "(written to alert_latency-burst.json)")
    parser.add_argument("--alerts-worker", action="store_true",
                        help="the inference worker on -Q cpu and a second, light worker (no model) "
                             "on -Q alerts,dicom (results file name gets -alerts-worker)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="triage-alert-bench-"))
    secret = secrets.token_hex(32)
    receiver = Receiver(secret)
    port = free_port()
    env = environment(folder, port, receiver, secret)
    token = prepare(env)
    url, database = f"http://127.0.0.1:{port}", folder / "db.sqlite3"
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    films = iter(candidate_films())
    web = worker = light = None
    runs, skipped = [], []
    load_before = os.getloadavg()
    print(f"starting web and worker on SQLite + the filesystem broker (files and logs in {folder})",
          flush=True)
    try:
        worker = CeleryWorker(env, folder / "celery.log", hostname=f"alert-bench-{os.getpid()}@%h",
                              options=("-Q", "cpu") if args.alerts_worker else (),
                              ready_timeout=300).start()
        if args.alerts_worker:
            light = start_light_worker(env, folder / "celery-alerts.log")
        web = start_gunicorn(env, port, folder / "gunicorn.log", "--config", "deploy/gunicorn.conf.py",
                             "--workers", "2", ready_path="/api/schema/")
        while True:  # the warm-up: the first film that alerts, not counted
            warm = one_film(session, url, database, receiver, next(films))
            if warm["review_first"]:
                break
        print(f"warm-up: {warm['upload_to_arrival_s']:.1f} s from upload to alert", flush=True)
        if args.burst:
            # All at once, as after a ward round: the alerts wait behind the queued analyses in
            # the one worker process that serves both queues.
            uploaded = [upload(session, url, next(films)) for _ in range(args.films)]
            deadline = time.time() + FILM_TIMEOUT_S + 15 * args.films
            for film in uploaded:
                run = outcome(database, receiver, film, deadline)
                (runs if run["review_first"] else skipped).append(run)
                if run["review_first"]:
                    report(run, len(runs))
        uploads = len(runs) + len(skipped)
        while not args.burst and len(runs) < args.films:
            if uploads >= MAX_UPLOADS_PER_ALERT * args.films:
                raise SystemExit(f"only {len(runs)} alerts from {uploads} uploads")
            uploads += 1
            run = one_film(session, url, database, receiver, next(films))
            if not run["review_first"]:
                skipped.append(run)
                print(f"  {run['file']}: not review first (p={run['probability']:.2f}), no alert", flush=True)
                continue
            runs.append(run)
            report(run, len(runs))
        time.sleep(2)  # a second copy of any alert would arrive by now
    except ProcessError as exc:
        raise SystemExit(str(exc))
    finally:
        if web:
            stop_process(web, timeout=30)
        if worker:
            worker.stop(timeout=30)
        if light:
            stop_process(light, timeout=30)
        receiver.stop()

    if not runs:
        raise SystemExit("no film made an alert")
    arrivals = receiver.arrivals
    unverified = sum(not a["verified"] for a in arrivals)
    per_image = [a["payload"]["image_id"] for a in arrivals if a["payload"]]
    duplicates = len(per_image) - len(set(per_image))
    beyond = [r["beyond_inference_s"] for r in runs]
    summary = {
        "films": len(runs),
        "uploads_without_alert": len(skipped),
        "upload_to_arrival_s": figures([r["upload_to_arrival_s"] for r in runs]),
        "beyond_inference_s": figures(beyond),
        "inference_s": figures([r["inference_s"] for r in runs]),
        "upload_post_s": figures([r["upload_s"] for r in runs]),
        "bar_beyond_inference_p95_s": BAR_S,
        "meets_bar": p95(beyond) < BAR_S,
        "signatures_verified": len(arrivals) - unverified,
        "signatures_failed": unverified,
        "duplicate_alerts": duplicates,
    }
    setup = {
        "database": "SQLite (file)", "broker": "kombu filesystem transport (polling 0.2 s)",
        "settings": "webapp.settings.local", "web": "gunicorn, deploy/gunicorn.conf.py, 2 workers",
        "worker": ("celery -A workers worker -Q cpu (concurrency 1) and celery -A workers worker "
                   "-Q alerts,dicom (no model, concurrency 2)" if args.alerts_worker else
                   "celery -A workers worker (no -Q: inference and alerts queues), concurrency 1"),
        "uploads": ("REST API, all films at once (--burst)" if args.burst else
                    "REST API, one film at a time, the next after the previous one's alert"),
        "cpu_count": os.cpu_count(), "machine": platform.machine(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    print("\n" + json.dumps(summary, indent=2))
    name = "alert_latency" + ("-burst" if args.burst else "") + ("-alerts-worker" if args.alerts_worker else "")
    target = REPO / "bench" / "results" / f"{name}.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps({"summary": summary, "setup": setup, "runs": runs,
                                  "without_alert": skipped}, indent=2) + "\n")
    print(f"written to {target.relative_to(REPO)}")
    if unverified or duplicates:
        print(f"FAILED: {unverified} unverified signature(s), {duplicates} duplicate alert(s); "
              f"logs in {folder}", file=sys.stderr)
        return 1
    shutil.rmtree(folder, ignore_errors=True)  # kept above, with its logs, when something failed
    return 0


if __name__ == "__main__":
    sys.exit(main())
