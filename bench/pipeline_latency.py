"""Upload -> overlay available, for 1024 x 1024 chest X-rays, with one CPU Celery worker.

    .venv/bin/python bench/pipeline_latency.py [--runs 6]

What runs: PostgreSQL and Redis on 127.0.0.1 (or DATABASE_URL / CELERY_BROKER_URL), a fresh
database ``pneumothorax_bench``, one real worker process (``celery -A workers worker -Q cpu
--concurrency 1``) with the real model, and the real Django views called in-process through
Django's test client (upload POST, status JSON polled every 50 ms, overlay PNG GET). Loopback
HTTP is the only thing left out (a few ms).

Reported per image: total = upload POST start -> overlay PNG fully read; inference = the model's
own forward pass as the worker measured it; overhead = total - inference (the bar: < 5 s). The
case page polls once a second, so a person sees the overlay up to 1 s later: "worst on screen"
adds that second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.bench import django_on_fresh_database  # noqa: E402
from tests.support.data import REPO, subset_images  # noqa: E402
from tests.support.processes import CeleryWorker, ProcessError  # noqa: E402

def start_worker(env: dict, log_path: Path) -> CeleryWorker:
    worker = CeleryWorker({**os.environ, **env}, log_path, hostname="bench@%h",
                          options=("-Q", "cpu"), ready_timeout=300)
    try:
        return worker.start()
    except ProcessError as exc:
        sys.exit(str(exc))


def one_run(client, path: Path) -> dict:
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = path.read_bytes()
    started = time.perf_counter()
    response = client.post("/cases/new/", {"images": [SimpleUploadedFile(path.name, data)]})
    uploaded = time.perf_counter()
    assert response.status_code == 302, response.content[:500]
    status_url = response["Location"] + "status.json"
    while True:
        payload = client.get(status_url).json()
        image = payload["images"][0]
        if image["status"] in ("done", "failed"):
            break
        time.sleep(0.05)
    assert image["status"] == "done", image["error"]
    overlay = b"".join(client.get(image["overlay_url"]).streaming_content)
    finished = time.perf_counter()
    assert overlay.startswith(b"\x89PNG")
    total_ms = (finished - started) * 1000
    timings = image["timings_ms"]
    return {
        "file": path.suffix[1:],
        "upload_ms": round((uploaded - started) * 1000, 1),
        "total_ms": round(total_ms, 1),
        "inference_ms": timings["inference"],
        "overhead_ms": round(total_ms - timings["inference"], 1),
        "worker": timings,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()

    env = django_on_fresh_database()
    from django.test import Client

    from tests.support.factories import UserFactory
    from webapp.celery_app import app

    app.control.purge()
    user = UserFactory(username="bench", password="bench-password-123")
    client = Client()
    client.force_login(user)

    images = [subset_images(ext)[i] for i in range(4) for ext in ("dcm", "png", "jpg")]
    log_path = REPO / "var" / "bench-worker.log"
    log_path.parent.mkdir(exist_ok=True)
    print("starting one CPU worker (loads torch and the model)...", flush=True)
    worker = start_worker(env, log_path)
    try:
        one_run(client, images[0])  # warm-up: first forward pass, lazy imports, connections
        results = [one_run(client, images[1 + i % (len(images) - 1)]) for i in range(args.runs)]
    finally:
        worker.stop(timeout=60)

    print(f"\n{'file':5} {'upload':>8} {'total':>8} {'inference':>10} {'overhead':>9}   worker stages (ms)")
    for r in results:
        stages = {k: v for k, v in r["worker"].items() if k != "inference"}
        print(f"{r['file']:5} {r['upload_ms']:8.0f} {r['total_ms']:8.0f} {r['inference_ms']:10.0f} "
              f"{r['overhead_ms']:9.0f}   {stages}")
    overheads = [r["overhead_ms"] for r in results]
    summary = {
        "runs": len(results),
        "overhead_median_ms": round(statistics.median(overheads), 1),
        "overhead_max_ms": round(max(overheads), 1),
        "worst_on_screen_overhead_ms": round(max(overheads) + 1000, 1),  # + the page's 1 s poll
        "inference_median_ms": round(statistics.median(r["inference_ms"] for r in results), 1),
        "total_median_ms": round(statistics.median(r["total_ms"] for r in results), 1),
        "bar_ms": 5000,
    }
    summary["meets_bar"] = summary["worst_on_screen_overhead_ms"] < summary["bar_ms"]
    print("\n" + json.dumps(summary, indent=2))
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "pipeline_latency.json").write_text(json.dumps({"summary": summary, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
