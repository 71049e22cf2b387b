"""500 real X-rays through the command-line client and the REST API, end to end on loopback.

    .venv/bin/python bench/api_client_throughput.py [--images 500] [--concurrency 4]

What runs: PostgreSQL and Redis on 127.0.0.1, a fresh database ``triage_api_bench`` (Redis db
13, media under /tmp), ``gunicorn webapp.wsgi`` with 2 workers on 127.0.0.1, one real Celery
worker (concurrency 1, the real model), and ``python -m triage.client submit`` on a temporary
folder of symbolic links to the shared SIIM-ACR subset (all 20 PNGs, then DICOMs and JPEGs in
equal numbers; nothing is copied into the repository).

Checked: every image completes, none is duplicated (one case per file, distinct SHA-256s, as
many upload audit rows as cases), and the client's CSV matches the API row for row; each mask
PNG is the input's size. Reported: wall time and throughput; the worker's own inference time
(the floor, with one worker); the client's own overhead (its CPU time, and its wall time
outside waiting for results). Written to bench/results/api_client_throughput.json.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.data import REPO, subset_images  # noqa: E402
from tests.support.processes import CeleryWorker, free_port, start_gunicorn, stop_process  # noqa: E402

BENCH_DB = "triage_api_bench"
MEDIA = Path("/tmp/triage-api-bench-media")


def environment(port: int) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "webapp.settings.development",
        "DJANGO_DEBUG": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/13",
        "PRIVATE_MEDIA_ROOT": str(MEDIA),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "INFERENCE_THREADS": os.environ.get("INFERENCE_THREADS", "2"),
        "API_THROTTLE_USER": "100000/hour",
    }


def choose_images(count: int) -> list[Path]:
    png = subset_images("png")
    rest = count - min(len(png), count)
    dcm, jpg = subset_images("dcm"), subset_images("jpg")
    chosen = png[:count] + dcm[: (rest + 1) // 2] + jpg[: rest // 2]
    assert len(chosen) == count, "not enough images in the shared subset"
    return chosen


def prepare(env: dict) -> str:
    import psycopg
    import redis

    with psycopg.connect("postgres://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        db.execute(f"CREATE DATABASE {BENCH_DB}")
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    shutil.rmtree(MEDIA, ignore_errors=True)
    python = [sys.executable, "manage.py"]
    subprocess.run(python + ["migrate", "-v", "0"], cwd=REPO, env=env, check=True)
    code = ("from webapp.accounts.models import User; from webapp.accounts.services import issue_token;"
            "u = User.objects.create_user('bench', password='bench-password-9');"
            "print(issue_token(u, name='bench')[1])")
    return subprocess.run(python + ["shell", "-c", code], cwd=REPO, env=env, check=True,
                          capture_output=True, text=True).stdout.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()

    port = free_port()
    env = environment(port)
    token = prepare(env)
    logs = Path(tempfile.mkdtemp(prefix="triage-api-bench-"))
    url = f"http://127.0.0.1:{port}"
    web = worker = None
    folder = logs / "xrays"
    out = logs / "results"
    try:
        worker = CeleryWorker(env, logs / "celery.log", hostname=f"bench-{os.getpid()}@%h",
                              ready_timeout=300).start()
        web = start_gunicorn(env, port, logs / "gunicorn.log", "-w", "2", "--timeout", "120",
                             ready_path="/api/schema/")
        folder.mkdir()
        chosen = choose_images(args.images)
        for path in chosen:
            (folder / path.name).symlink_to(path)

        print(f"submitting {len(chosen)} images to {url} (logs in {logs})", flush=True)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        client = subprocess.run(
            [sys.executable, "-m", "triage.client", "submit", str(folder), "--url", url, "--token",
             token, "--out", str(out), "--concurrency", str(args.concurrency), "--poll", "1",
             "--summary-json", str(logs / "summary.json")], cwd=REPO, env=env)
        wall = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if client.returncode != 0:
            raise SystemExit(f"the client failed ({client.returncode})")
        summary = json.loads((logs / "summary.json").read_text())
        checks = verify(url, token, summary, out, len(chosen))
    finally:
        if web:
            stop_process(web, timeout=60)
        if worker:
            worker.stop(timeout=60)

    client_cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    timings = summary["timings"]
    inference_s = checks.pop("inference_s")
    results = {
        "images": len(chosen), "formats": checks.pop("formats"),
        "client_concurrency": args.concurrency, "gunicorn_workers": 2, "celery_workers": 1,
        "wall_s": round(wall, 1), "throughput_images_per_s": round(len(chosen) / wall, 3),
        "worker_inference_total_s": round(inference_s, 1),
        "upload_phase_s": round(timings["upload_s"], 1),
        "upload_rate_images_per_s": round(len(chosen) / timings["upload_s"], 1),
        "client_cpu_s": round(client_cpu, 1),
        "client_cpu_ms_per_image": round(1000 * client_cpu / len(chosen), 1),
        "client_after_last_result_s": round(timings["results_s"], 1),
        "requests": summary["requests"],
        **checks,
    }
    target = REPO / "bench" / "results" / "api_client_throughput.json"
    target.parent.mkdir(exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    shutil.rmtree(MEDIA, ignore_errors=True)
    return 0


def verify(url: str, token: str, summary: dict, out: Path, expected: int) -> dict:
    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    cases, next_url = {}, f"{url}/api/v1/cases/?page_size=200"
    while next_url:
        page = session.get(next_url).json()
        cases.update({c["id"]: c for c in page["results"]})
        next_url = page["next"]
    images = [c["images"][0] for c in cases.values()]
    assert len(cases) == expected, f"{len(cases)} cases for {expected} files"
    assert all(len(c["images"]) == 1 for c in cases.values())
    assert len({i["sha256"] for i in images}) == expected, "duplicated content"
    assert all(i["status"] == "done" for i in images), "not all done"
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == expected and len({r["case_id"] for r in rows}) == expected
    mismatches = 0
    for row in rows:
        image = cases[row["case_id"]]["images"][0]
        same = (row["status"] == image["status"] and row["image_id"] == image["id"]
                and abs(float(row["probability"]) - image["probability"]) < 1e-9
                and row["positive"] == str(image["positive"])
                and abs(float(row["area_fraction"]) - image["area_fraction"]) < 1e-12
                and row["area_cm2"] == ("" if image["area_cm2"] is None else str(image["area_cm2"]))
                and row["sha256"] == image["sha256"]
                and (out / row["mask_file"]).stat().st_size > 0)
        mismatches += not same
    assert mismatches == 0, f"{mismatches} CSV rows differ from the API"
    import psycopg

    with psycopg.connect(f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}") as db:
        stored_cases = db.execute("SELECT count(*) FROM cases_case").fetchone()[0]
        upload_rows = db.execute("SELECT count(*) FROM audit_auditevent WHERE action = 'upload' "
                                 "AND object_type = 'case'").fetchone()[0]
    assert stored_cases == upload_rows == expected, (stored_cases, upload_rows)
    formats: dict[str, int] = {}
    for image in images:
        formats[image["source_format"]] = formats.get(image["source_format"], 0) + 1
    return {"all_done": True, "duplicates": 0, "cases_in_database": stored_cases,
            "upload_audit_rows": upload_rows, "csv_rows_matching_api": len(rows),
            "masks_written": len(list((out / "masks").glob("*.png"))), "formats": formats,
            "inference_s": sum(i["timings_ms"].get("inference", 0) for i in images) / 1000}


if __name__ == "__main__":
    sys.exit(main())
