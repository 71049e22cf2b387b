"""The PACS round-trip bench's measuring parts (bench/pacs_roundtrip.py runs them): instances
with new UIDs, concurrent associations sending them to the listener, the processes' peak RSS,
waiting for every delivery, reading each case back, checking Orthanc, and the figures' spread."""

from __future__ import annotations

import math
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.support.data import subset_images
from tests.support.listener import LISTENER_AE_TITLE, DicomListener
from tests.support.orthanc import Orthanc
from tests.support.processes import CeleryWorker

SCU_AE_TITLE = "BENCH"  # the sender, and the registered node its results go to
RESULTS_PER_STUDY = 3  # SC, SEG, SR


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
