"""The hospital loop under load: N chest X-rays sent over C-STORE to the DICOM listener from
concurrent associations, one CPU worker, the results (SC, SEG, SR) filed back in Orthanc.

    .venv/bin/python bench/pacs_roundtrip.py --instances 200 --associations 4 [--worker-threads 2]
        [--json PATH] [--timeout 3600]

What runs, as real processes: Orthanc (Debian's package, its own configuration, storage in a
temporary folder, free loopback ports) as the results destination; the DICOM listener
(``manage.py dicom_listener``); ONE Celery worker (``celery -A workers worker``, concurrency 1,
every queue it can serve: cpu and dicom; CUDA hidden, INFERENCE_THREADS=--worker-threads) with
the real model. They use PostgreSQL and Redis from DATABASE_URL / CELERY_BROKER_URL (default
``pt_bench`` on 127.0.0.1, created if missing, migrated; Redis database 14, purged). A user
``bench-pacs`` owns the node ``BENCH`` at 127.0.0.1: it sends (this script's SCU AE title) and
receives the results (Orthanc's DICOM port; Orthanc accepts any called AE title).

The instances: the shared SIIM-ACR DICOMs, each sent with new Study, Series and SOP Instance
UIDs (its own study, so N cases; a second run against the same database is not taken for a
resend of the first, which the listener would keep once); past the number of files, they are
used again, with new UIDs again.

Measured: the listener's accepted rate = N / wall time of the sending phase (threads start
together, associate, send their share one C-STORE after another; success is required; the
listener answers once the image and its job are committed, never waiting for inference); per
instance, its C-STORE response -> its delivery's ``finished_at`` (status "delivered": Orthanc
answered success to all three results), median and p95 (nearest rank); the overall throughput
(N / first C-STORE sent -> last delivery, per minute); the worker's peak RSS (VmHWM of its main
and pool processes). Every study is then checked in Orthanc's REST API: it holds exactly the
three results the delivery recorded. Logs: var/bench-pacs-roundtrip/. The sending, waiting
and checking parts are in tests/support/pacs_bench.py; this script sets up, runs and reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.data import REPO  # noqa: E402
from tests.support.listener import DicomListener  # noqa: E402
from tests.support.orthanc import Orthanc  # noqa: E402
from tests.support.pacs_bench import (SCU_AE_TITLE, RssWatch, case_details,  # noqa: E402
                                      check_orthanc, prepare_instances, send_all, spread,
                                      wait_for_deliveries)
from tests.support.processes import CeleryWorker, ProcessError  # noqa: E402

BENCH_USER = "bench-pacs"
LOGS = REPO / "var" / "bench-pacs-roundtrip"
ENVIRONMENT = {
    "DJANGO_SETTINGS_MODULE": "webapp.settings.test",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/pt_bench",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/14",
    "PRIVATE_MEDIA_ROOT": "/tmp/pt_bench_media",
}


def database_ready() -> None:
    """Create the database of DATABASE_URL if it is missing, set Django up, migrate."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # not a line per C-STORE here


def register_node(orthanc_port: int):
    from django.core.management import call_command

    from webapp.accounts.models import User
    from webapp.pacs.models import DicomNode

    if not User.objects.filter(username=BENCH_USER).exists():
        User.objects.create_user(BENCH_USER)  # no password: nobody logs in as it
    call_command("add_dicom_node", "--ae-title", SCU_AE_TITLE, "--host", "127.0.0.1",
                 "--port", str(orthanc_port), "--owner", BENCH_USER, "--direction", "both",
                 "--name", "bench/pacs_roundtrip.py", stdout=open(os.devnull, "w"))
    return DicomNode.objects.get(ae_title=SCU_AE_TITLE, host="127.0.0.1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--associations", type=int, default=4)
    parser.add_argument("--worker-threads", type=int, default=2, help="INFERENCE_THREADS")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="seconds to wait for every delivery (default 3600)")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    if args.instances < 1 or args.associations < 1:
        parser.error("--instances and --associations must be at least 1")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up on a kill, too
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    database_ready()
    from django.conf import settings

    from tests.support.connections import process_environment
    from webapp.celery_app import app

    app.control.purge()  # the bench broker's queues: nothing left from an interrupted run
    env = process_environment(settings, INFERENCE_THREADS=str(args.worker_threads),
                              CUDA_VISIBLE_DEVICES="")  # a CPU worker, on any machine
    LOGS.mkdir(parents=True, exist_ok=True)
    datasets = prepare_instances(args.instances)
    uids = [str(d.SOPInstanceUID) for d in datasets]

    workdir = Path(tempfile.mkdtemp(prefix="bench-pacs-orthanc-"))
    orthanc = Orthanc(workdir)
    listener = DicomListener(env, LOGS / "listener.log")
    (LOGS / "listener.log").write_bytes(b"")
    worker = CeleryWorker(env, LOGS / "worker.log", hostname=f"bench-pacs-{os.getpid()}@%h",
                          ready_timeout=300)
    try:
        orthanc.start()
        node = register_node(orthanc.dicom_port)
        listener.start()
        print(f"Orthanc DICOM :{orthanc.dicom_port}, listener :{listener.port}; starting one CPU "
              f"worker (INFERENCE_THREADS={args.worker_threads}, loads torch and the model)...",
              flush=True)
        worker.start()
        rss = RssWatch(worker, listener)

        records, sent_epoch, send_wall = send_all(listener.port, datasets, args.associations)
        stored = [i for i in range(len(datasets)) if records.get(i, {}).get("status") == 0]
        refused = {i: records.get(i, {"status": None, "error": "no response"})
                   for i in range(len(datasets)) if i not in stored}
        for index, record in list(refused.items())[:10]:
            print(f"  instance {index} ({datasets[index].bench_source}): status "
                  f"{record['status']} {record.get('error', '')}")
        accepted_rate = len(stored) / send_wall
        print(f"accepted {len(stored)}/{len(datasets)} in {send_wall:.1f} s: "
              f"{accepted_rate:.1f} instances/s", flush=True)

        stored_uids = [uids[i] for i in stored]
        seen = wait_for_deliveries(node, stored_uids, args.timeout, worker, rss)
        rss.sample()
        details = case_details(node, stored_uids)
        delivered = [u for u in stored_uids if seen.get(u, (None,))[0] == "delivered"]
        print(f"checking {len(delivered)} studies in Orthanc...", flush=True)
        problems = check_orthanc(orthanc, datasets, details, delivered)
    except ProcessError as exc:  # a process that did not come up: its log's tail
        sys.exit(str(exc))
    finally:
        listener.stop()
        worker.stop(timeout=60)
        orthanc.stop()
        if orthanc.log_path.exists():
            shutil.copyfile(orthanc.log_path, LOGS / "orthanc.log")
        shutil.rmtree(workdir, ignore_errors=True)

    report(args, datasets, uids, records, stored, delivered, seen, details, problems,
           sent_epoch, send_wall, rss.peaks)


def report(args, datasets, uids, records, stored, delivered, seen, details, problems,
           sent_epoch, send_wall, peaks) -> None:
    instances = []
    for index, dataset in enumerate(datasets):
        uid, record = uids[index], records.get(index, {})
        status, finished = seen.get(uid, (None, None))
        detail = details.get(uid, {})
        job_finished = detail.get("job_finished")
        stored_at = record.get("stored_at")
        instances.append({
            "index": index, "source": dataset.bench_source, "sop_instance_uid": uid,
            "association": record.get("association"), "c_store_status": record.get("status"),
            "c_store_ms": round((stored_at - record["sent_at"]) * 1000, 1) if stored_at else None,
            "delivery": status, "job": detail.get("job_status"),
            "inference_ms": detail.get("inference_ms"),
            "to_job_done_s": round(job_finished.timestamp() - stored_at, 2)
            if job_finished and stored_at else None,
            "to_results_in_orthanc_s": round(finished.timestamp() - stored_at, 2)
            if status == "delivered" and finished and stored_at else None,
        })
    latencies = [i["to_results_in_orthanc_s"] for i in instances if i["to_results_in_orthanc_s"] is not None]
    to_job = [i["to_job_done_s"] for i in instances if i["to_job_done_s"] is not None]
    c_store = [i["c_store_ms"] for i in instances if i["c_store_ms"] is not None]
    inference = [i["inference_ms"] for i in instances if i["inference_ms"] is not None]
    last = max((seen[u][1].timestamp() for u in delivered if seen[u][1]), default=None)
    span = last - sent_epoch if last else None
    summary = {
        "instances": len(datasets), "associations": args.associations,
        "worker_threads": args.worker_threads, "accepted": len(stored),
        "delivered": len(delivered), "verified_in_orthanc": len(delivered) - len(problems),
        "sending_wall_s": round(send_wall, 2),
        "accepted_per_s": round(len(stored) / send_wall, 2),
        "c_store_ms": spread(c_store),
        "c_store_to_results_in_orthanc_s": spread(latencies),
        "c_store_to_job_done_s": spread(to_job),
        "inference_ms": spread(inference),
        "first_sent_to_last_delivered_s": round(span, 1) if span else None,
        "throughput_per_min": round(len(delivered) / span * 60, 2) if span else None,
        "peak_rss_mb": {k: round(v, 1) if v else None for k, v in peaks.items()},
        "orthanc_problems": problems[:20],
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    rows = [
        ("instances accepted / sent", f"{len(stored)} / {len(datasets)}"),
        ("listener: accepted instances/s", f"{summary['accepted_per_s']:.2f}"
         f"  ({len(stored)} in {send_wall:.1f} s, {args.associations} associations)"),
        ("C-STORE round trip ms (median / p95)", pair(summary["c_store_ms"], ".0f")),
        ("delivered / verified in Orthanc", f"{len(delivered)} / {summary['verified_in_orthanc']}"),
        ("C-STORE -> results in Orthanc s (median / p95)",
         pair(summary["c_store_to_results_in_orthanc_s"], ".1f")),
        ("  of which C-STORE -> job done s (median / p95)", pair(summary["c_store_to_job_done_s"], ".1f")),
        ("  inference ms per image (median / p95)", pair(summary["inference_ms"], ".0f")),
        ("overall throughput images/min", f"{summary['throughput_per_min']}"
         f"  ({summary['first_sent_to_last_delivered_s']} s first sent -> last delivered)"),
        ("worker peak RSS MB (main / pool)",
         f"{summary['peak_rss_mb']['worker_main']} / {summary['peak_rss_mb']['worker_pool']}"),
        ("listener peak RSS MB", f"{summary['peak_rss_mb']['listener']}"),
    ]
    print()
    for label, value in rows:
        print(f"{label:<48} {value}")
    for problem in problems[:10]:
        print(f"  Orthanc: {problem}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"summary": summary, "instances": instances}, indent=2))
        print(f"\nwrote {args.json}")
    if len(delivered) < len(datasets) or problems:
        sys.exit(1)


def pair(figures: dict, fmt: str) -> str:
    if figures["median"] is None:
        return "-"
    return f"{figures['median']:{fmt}} / {figures['p95']:{fmt}}"


if __name__ == "__main__":
    main()
