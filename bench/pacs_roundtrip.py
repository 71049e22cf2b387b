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
three results the delivery recorded. Logs: var/bench-pacs-roundtrip/.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.data import REPO, subset_images  # noqa: E402
from tests.support.listener import LISTENER_AE_TITLE, DicomListener  # noqa: E402
from tests.support.orthanc import Orthanc  # noqa: E402
from tests.support.processes import CeleryWorker, ProcessError  # noqa: E402

SCU_AE_TITLE = "BENCH"  # the sender, and the registered node its results go to
BENCH_USER = "bench-pacs"
RESULTS_PER_STUDY = 3  # SC, SEG, SR
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


def prepare_instances(count: int) -> list:
    """``count`` datasets in memory, each with new Study/Series/SOP Instance UIDs."""
    import pydicom
    from pydicom.uid import generate_uid

    paths = subset_images("dcm")
    if not paths:
        sys.exit("no *.dcm in the shared SIIM-ACR subset (../shared/data/siim-acr-subset/images)")
    datasets = []
    for index in range(count):
        path = paths[index % len(paths)]
        dataset = pydicom.dcmread(path)
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = generate_uid(), generate_uid()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        dataset.bench_source = path.name  # not a DICOM element: Python attribute only
        datasets.append(dataset)
    print(f"prepared {count} instances from {min(count, len(paths))} of the {len(paths)} shared "
          "DICOMs (new UIDs each)", flush=True)
    return datasets


def send_share(port: int, share: list[tuple[int, object]], association: int,
               start: threading.Barrier, records: dict, bar) -> None:
    """One association: wait for the others, then C-STORE this share one after another."""
    from pynetdicom import AE

    ae = AE(ae_title=SCU_AE_TITLE)
    for context in {(d.SOPClassUID, d.file_meta.TransferSyntaxUID) for _, d in share}:
        ae.add_requested_context(*context)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 300  # a busy machine
    start.wait()
    assoc = ae.associate("127.0.0.1", port, ae_title=LISTENER_AE_TITLE)
    if not assoc.is_established:
        for index, _ in share:
            records[index] = {"association": association, "status": None,
                              "error": "association not established"}
        return
    try:
        for index, dataset in share:
            sent_at = time.time()
            response = assoc.send_c_store(dataset)
            status = int(response.Status) if "Status" in response else None
            records[index] = {"association": association, "sent_at": sent_at,
                              "stored_at": time.time(), "status": status,
                              "error": str(response.get("ErrorComment", "")) if status else ""}
            bar.update(1)
    finally:
        if assoc.is_established:
            assoc.release()


def send_all(port: int, datasets: list, associations: int) -> tuple[dict, float, float]:
    """Every dataset over ``associations`` concurrent associations (round robin shares);
    returns the records by index, the start (epoch) and the wall time of the sending phase."""
    from tqdm import tqdm

    associations = min(associations, len(datasets))  # no association with nothing to send
    shares = [list(enumerate(datasets))[a::associations] for a in range(associations)]
    start = threading.Barrier(associations + 1)
    records: dict[int, dict] = {}
    with tqdm(total=len(datasets), desc="C-STORE", unit="inst") as bar, \
            ThreadPoolExecutor(associations) as pool:
        futures = [pool.submit(send_share, port, share, a, start, records, bar)
                   for a, share in enumerate(shares)]
        start.wait()
        started_epoch, started = time.time(), time.perf_counter()
        for future in futures:
            future.result()
        wall = time.perf_counter() - started
    return records, started_epoch, wall


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class RssWatch:
    """The highest VmHWM seen of the worker's main process, its pool processes, the listener."""

    def __init__(self, worker: CeleryWorker, listener: DicomListener):
        self.worker, self.listener = worker, listener
        self.peaks = {"worker_main": None, "worker_pool": None, "listener": None}

    def sample(self) -> None:
        seen = {"worker_main": [self.worker.pid], "worker_pool": self.worker.pool_pids(),
                "listener": [self.listener.process.pid]}
        for role, pids in seen.items():
            for pid in pids:
                value = peak_rss_mb(pid)
                if value is not None and (self.peaks[role] is None or value > self.peaks[role]):
                    self.peaks[role] = value


def wait_for_deliveries(node, uids: list[str], timeout: float, worker: CeleryWorker,
                        rss: RssWatch) -> dict[str, tuple]:
    """Poll the database until every instance's delivery has ended (delivered, failed,
    nothing); returns uid -> (status, finished_at) of those seen, when all ended or at timeout."""
    from tqdm import tqdm

    from webapp.pacs.models import Delivery, DeliveryStatus

    ended = {DeliveryStatus.DELIVERED, DeliveryStatus.FAILED, DeliveryStatus.NOTHING}
    deadline = time.monotonic() + timeout
    seen: dict[str, tuple] = {}
    with tqdm(total=len(uids), desc="delivered", unit="case") as bar:
        while time.monotonic() < deadline:
            seen = {uid: (status, finished) for uid, status, finished in Delivery.objects.filter(
                node=node, case__images__inbound__sop_instance_uid__in=uids).values_list(
                "case__images__inbound__sop_instance_uid", "status", "finished_at")}
            done = sum(1 for status, _ in seen.values() if status in ended)
            bar.update(done - bar.n)
            rss.sample()
            if done == len(uids):
                break
            if not worker.alive():
                bar.close()
                sys.exit(f"the worker exited ({worker.process.returncode}); see {worker.log_path}")
            time.sleep(1)
    return seen


def case_details(node, uids: list[str]) -> dict[str, dict]:
    """Per instance: its job's end and inference time, its delivery's sent results."""
    from webapp.pacs.models import Delivery, InboundImage

    details = {}
    for uid, case_id, job_status, job_finished, timings in InboundImage.objects.filter(
            node=node, sop_instance_uid__in=uids).values_list(
            "sop_instance_uid", "image__case_id", "image__job__status",
            "image__job__finished_at", "image__job__timings_ms"):
        details[uid] = {"case": case_id, "job_status": job_status, "job_finished": job_finished,
                        "inference_ms": (timings or {}).get("inference")}
    sent = dict(Delivery.objects.filter(node=node, case_id__in=[d["case"] for d in details.values()])
                .values_list("case_id", "sent"))
    for detail in details.values():
        detail["sent"] = sent.get(detail["case"], [])
    return details


def check_orthanc(orthanc: Orthanc, datasets: list, details: dict, delivered: list[str]) -> list[str]:
    """Each delivered study in Orthanc holds exactly the results its delivery recorded."""
    problems = []
    by_uid = {str(d.SOPInstanceUID): d for d in datasets}
    for uid in delivered:
        study_uid = str(by_uid[uid].StudyInstanceUID)
        studies = orthanc.find_studies_by_uid(study_uid)
        if len(studies) != 1:
            problems.append(f"{study_uid}: {len(studies)} studies in Orthanc")
            continue
        held = {i["MainDicomTags"].get("SOPInstanceUID")
                for i in orthanc.get_json(f"/studies/{studies[0]}/instances")}
        expected = {s["sop_instance_uid"] for s in details[uid]["sent"]}
        if len(held) != RESULTS_PER_STUDY or held != expected:
            problems.append(f"{study_uid}: Orthanc holds {len(held)} instances, the delivery "
                            f"sent {len(expected)}{'' if held == expected else ' (other UIDs)'}")
    return problems


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))]


def spread(values: list[float]) -> dict:
    if not values:
        return {"median": None, "p95": None, "min": None, "max": None}
    return {"median": round(statistics.median(values), 2), "p95": round(nearest_rank(values, 0.95), 2),
            "min": round(min(values), 2), "max": round(max(values), 2)}


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
