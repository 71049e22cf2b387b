"""Submit a folder of chest X-rays to the Pneumothorax Triage API and collect the results.

    python -m triage.client submit DIR --url http://127.0.0.1:8000 --token KEY [--out OUT]

Walks DIR for DICOM/PNG/JPEG files, opens a batch, uploads each file as one case with bounded
concurrency (progress bar), waits for the results (second progress bar), then writes
OUT/results.csv (file, case id, probability, positive, area...) and OUT/masks/*.png.

Restarts never upload twice: every accepted upload is appended to a state file (OUT/state.jsonl,
fsync'ed) and skipped next time; and every upload carries ``Idempotency-Key`` = the SHA-256 of
the file's content, so even a file whose answer was lost (a crash between the server's commit and
the state write) is answered by the server with the case it already has, not a new one.

Only the standard library, ``requests`` and ``tqdm``.
"""

from __future__ import annotations

import argparse
import concurrent.futures as futures
import csv
import hashlib
import json
import os
import resource
import sys
import threading
import time
from pathlib import Path

import requests
from tqdm import tqdm

EXTENSIONS = {".dcm", ".dicom", ".png", ".jpg", ".jpeg"}
CONTENT_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}
RETRY_STATUSES = {429, 500, 502, 503, 504}
CSV_FIELDS = ["file", "sha256", "case_id", "image_id", "status", "probability", "positive",
              "area_fraction", "area_cm2", "model_version", "error", "mask_file"]


class ClientError(RuntimeError):
    pass


def find_files(folder: Path, exclude: Path | None = None) -> list[Path]:
    found = []
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        root_path = Path(root)
        if exclude is not None and (root_path == exclude or exclude in root_path.parents):
            continue
        for name in sorted(names):
            if not name.startswith(".") and Path(name).suffix.lower() in EXTENSIONS:
                found.append(root_path / name)
    return found


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class State:
    """Append-only JSON lines: {"batch": id} and {"file": rel, "sha256", "case", "image"} or
    {"file": rel, "sha256", "rejected": [reasons]}. Each line is flushed and fsync'ed."""

    def __init__(self, path: Path):
        self.path = path
        self.batch: str | None = None
        self.files: dict[str, dict] = {}
        self._lock = threading.Lock()
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a crash
                if "file" in record:
                    self.files[record["file"]] = record
                elif "batch" in record:
                    self.batch = record["batch"]

    def add(self, record: dict) -> None:
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            if "file" in record:
                self.files[record["file"]] = record
            else:
                self.batch = record["batch"]


class Api:
    def __init__(self, url: str, token: str, timeout: float = 120, retries: int = 8):
        self.base = url.rstrip("/") + "/api/v1/"
        self.token, self.timeout, self.retries = token, timeout, retries
        self._local = threading.local()
        self.requests = 0

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update({"Authorization": f"Token {self.token}",
                                    "Accept": "application/json"})
        return session

    def call(self, method: str, url: str, ok=(200, 201), **kwargs) -> requests.Response:
        """Retries 429 (after Retry-After), 5xx and connection errors; every POST carries an
        Idempotency-Key, so a retry is safe."""
        url = url if url.startswith("http") else self.base + url
        delay = 0.5
        for attempt in range(self.retries + 1):
            for value in kwargs.get("files", {}).values():
                value[1].seek(0)
            try:
                self.requests += 1
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.ConnectionError:
                if attempt == self.retries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                wait = response.headers.get("Retry-After")
                time.sleep(float(wait) if wait and wait.replace(".", "", 1).isdigit() else delay)
                delay = min(delay * 2, 10)
                continue
            if response.status_code not in ok:
                raise ClientError(f"{method} {url}: {response.status_code} {response.text[:500]}")
            return response
        raise AssertionError("unreachable")


def open_batch(api: Api, state: State, folder: Path, files: list[Path], label: str | None) -> str:
    if state.batch:
        return state.batch
    listing = hashlib.sha256("\n".join(
        f"{p.relative_to(folder)}\t{p.stat().st_size}" for p in files).encode()).hexdigest()
    response = api.call("POST", "batches/", json={"label": (label or folder.name)[:200],
                                                  "expected_cases": len(files)},
                        headers={"Idempotency-Key": f"triage-client:batch:{listing}"})
    state.add({"batch": response.json()["id"]})
    return state.batch


def upload_one(api: Api, state: State, folder: Path, path: Path, batch: str) -> dict:
    relative = str(path.relative_to(folder))
    digest = sha256_file(path)
    with open(path, "rb") as handle:
        response = api.call(
            "POST", "cases/", ok=(200, 201, 400, 409),
            files={"images": (path.name, handle, CONTENT_TYPES.get(path.suffix.lower(),
                                                                    "application/octet-stream"))},
            data={"batch": batch},
            headers={"Idempotency-Key": f"triage-client:sha256:{digest}"})
    body = response.json()
    if response.status_code in (200, 201):
        record = {"file": relative, "sha256": digest, "case": body["id"],
                  "image": body["images"][0]["id"], "batch": body["batch"],
                  "replayed": response.status_code == 200}
    elif response.status_code == 409 and body.get("case"):
        record = {"file": relative, "sha256": digest, "case": body["case"], "image": None}
    else:
        record = {"file": relative, "sha256": digest,
                  "rejected": body.get("errors") or [body.get("detail", "refused")]}
    state.add(record)
    return record


def wait_for_batch(api: Api, batch: str, expected_images: int, timeout: float, poll: float,
                   show: bool) -> dict:
    deadline = time.monotonic() + timeout
    bar = tqdm(total=expected_images, desc="results", unit="img", disable=not show)
    try:
        while True:
            progress = api.call("GET", f"batches/{batch}/").json()["progress"]
            finished = progress["done"] + progress["failed"]
            bar.total = max(expected_images, progress["images"])
            bar.n = finished
            bar.set_postfix(done=progress["done"], failed=progress["failed"],
                            running=progress["running"], refresh=False)
            bar.refresh()
            if progress["images"] >= expected_images and finished >= progress["images"]:
                return progress
            if time.monotonic() > deadline:
                raise ClientError(f"results not complete after {timeout:.0f} s: {progress}")
            time.sleep(poll)
    finally:
        bar.close()


def fetch_cases(api: Api, batch: str, wanted: set[str]) -> dict[str, dict]:
    cases, url = {}, f"cases/?batch={batch}&page_size=200"
    while url:
        page = api.call("GET", url).json()
        cases.update({c["id"]: c for c in page["results"]})
        url = page["next"]
    for case_id in wanted - set(cases):  # uploaded in another batch (an earlier run)
        cases[case_id] = api.call("GET", f"cases/{case_id}/").json()
    return cases


def mask_name(relative: str) -> str:
    return relative.replace(os.sep, "__").rsplit(".", 1)[0] + "-mask.png"


def download_mask(api: Api, url: str, target: Path) -> None:
    if target.exists() and target.stat().st_size > 0:
        return
    response = api.call("GET", url, headers={"Accept": "image/png"})
    partial = target.with_suffix(".part")
    partial.write_bytes(response.content)
    partial.replace(target)


def submit(args) -> dict:
    started = time.perf_counter()
    folder = Path(args.dir).resolve()
    out = Path(args.out).resolve() if args.out else folder.parent / f"{folder.name}-triage"
    state = State(Path(args.state).resolve() if args.state else out / "state.jsonl")
    files = find_files(folder, exclude=out)
    if not files:
        raise ClientError(f"no DICOM/PNG/JPEG files under {folder}")
    api = Api(args.url, args.token, retries=args.retries)
    show = not args.quiet
    batch = open_batch(api, state, folder, files, args.label)

    todo = [p for p in files if str(p.relative_to(folder)) not in state.files]
    skipped = len(files) - len(todo)
    if show:
        print(f"{len(files)} files: {skipped} already uploaded, {len(todo)} to upload "
              f"(batch {batch})", file=sys.stderr)
    timings = {}
    t = time.perf_counter()
    with tqdm(total=len(files), initial=skipped, desc="upload", unit="file", disable=not show) as bar, \
            futures.ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        pending = [pool.submit(upload_one, api, state, folder, p, batch) for p in todo]
        for done in futures.as_completed(pending):
            done.result()
            bar.update(1)
    timings["upload_s"] = time.perf_counter() - t

    accepted = {rel: r for rel, r in state.files.items() if r.get("case")}
    summary = {"files": len(files), "uploaded_now": len(todo), "skipped": skipped,
               "accepted": len(accepted), "rejected": len(state.files) - len(accepted),
               "batch": batch, "out": str(out)}
    if args.no_wait:
        summary["timings"] = timings
        return summary

    t = time.perf_counter()
    case_ids = {r["case"] for r in accepted.values()}
    in_batch = len({r["case"] for r in accepted.values() if r.get("batch") == batch})
    wait_for_batch(api, batch, in_batch, args.timeout, args.poll, show)
    cases = fetch_cases(api, batch, case_ids)
    # Cases of an earlier batch may still be running: wait for them one by one.
    deadline = time.monotonic() + args.timeout
    while any(c["status"] in ("queued", "running") for c in cases.values() if c["id"] in case_ids):
        if time.monotonic() > deadline:
            raise ClientError("results not complete in time")
        time.sleep(args.poll)
        for case_id, case in list(cases.items()):
            if case_id in case_ids and case["status"] in ("queued", "running"):
                cases[case_id] = api.call("GET", f"cases/{case_id}/").json()
    timings["wait_s"] = time.perf_counter() - t

    t = time.perf_counter()
    masks = out / "masks"
    masks.mkdir(parents=True, exist_ok=True)
    rows, downloads = [], []
    for path in files:
        relative = str(path.relative_to(folder))
        record = state.files.get(relative, {})
        row = dict.fromkeys(CSV_FIELDS, "")
        row.update(file=relative, sha256=record.get("sha256", ""))
        if record.get("rejected"):
            row.update(status="rejected", error="; ".join(record["rejected"]))
        elif record.get("case"):
            case = cases[record["case"]]
            image = case["images"][0]
            row.update(case_id=case["id"], image_id=image["id"], status=image["status"],
                       error=image["error"], model_version=image["model_version"])
            for key in ("probability", "positive", "area_fraction", "area_cm2"):
                row[key] = "" if image[key] is None else image[key]
            if image["mask_url"] and not args.no_masks:
                target = masks / mask_name(relative)
                row["mask_file"] = str(target.relative_to(out))
                downloads.append((image["mask_url"], target))
        rows.append(row)
    with futures.ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        list(tqdm(pool.map(lambda d: download_mask(api, *d), downloads), total=len(downloads),
                  desc="masks", unit="png", disable=not show or not downloads))
    csv_path = out / "results.csv"
    partial = csv_path.with_suffix(".part")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(csv_path)
    timings["results_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary.update(csv=str(csv_path), done=sum(r["status"] == "done" for r in rows),
                   failed=sum(r["status"] == "failed" for r in rows), masks=len(downloads),
                   requests=api.requests, timings=timings,
                   cpu_s={"user": usage.ru_utime, "system": usage.ru_stime})
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m triage.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("submit", help="upload a folder, wait, write results.csv + masks")
    p.add_argument("dir")
    p.add_argument("--url", default=os.environ.get("TRIAGE_URL", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("TRIAGE_TOKEN"),
                   help="API token (or TRIAGE_TOKEN); manage.py drf_create_token <user>")
    p.add_argument("--out", help="results folder (default: DIR-triage next to DIR)")
    p.add_argument("--state", help="state file (default: OUT/state.jsonl)")
    p.add_argument("--concurrency", type=int, default=4, help="uploads in flight (default 4)")
    p.add_argument("--label", help="batch label (default: the folder's name)")
    p.add_argument("--timeout", type=float, default=6 * 3600, help="seconds to wait for results")
    p.add_argument("--poll", type=float, default=2.0, help="seconds between progress checks")
    p.add_argument("--retries", type=int, default=8)
    p.add_argument("--no-wait", action="store_true", help="upload only")
    p.add_argument("--no-masks", action="store_true", help="do not download mask PNGs")
    p.add_argument("--summary-json", help="write a JSON summary (counts, timings) here")
    p.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("--token (or TRIAGE_TOKEN) is required")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    try:
        summary = submit(args)
    except (ClientError, requests.RequestException) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: run the same command again to resume", file=sys.stderr)
        return 130
    if args.summary_json:
        Path(args.summary_json).write_text(json.dumps(summary, indent=2))
    if not args.quiet:
        print(json.dumps({k: v for k, v in summary.items() if k not in ("timings", "cpu_s")}),
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
