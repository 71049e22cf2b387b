"""Collecting results: wait for the batch to finish, fetch its cases (and any of an earlier
batch), download masks, write ``results.csv`` (each file written whole, then renamed)."""

from __future__ import annotations

import concurrent.futures as futures
import csv
import time
from pathlib import Path

from tqdm import tqdm

from triage.client.api import Api, ClientError
from triage.client.files import mask_name

CSV_FIELDS = ["file", "sha256", "case_id", "image_id", "status", "probability", "positive",
              "area_fraction", "area_cm2", "model_version", "error", "mask_file"]
UNFINISHED = ("queued", "running")


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


def wait_for_cases(api: Api, cases: dict[str, dict], case_ids: set[str], timeout: float,
                   poll: float) -> None:
    """Cases of an earlier batch may still be running: wait for them one by one."""
    deadline = time.monotonic() + timeout
    while any(c["status"] in UNFINISHED for c in cases.values() if c["id"] in case_ids):
        if time.monotonic() > deadline:
            raise ClientError("results not complete in time")
        time.sleep(poll)
        for case_id, case in list(cases.items()):
            if case_id in case_ids and case["status"] in UNFINISHED:
                cases[case_id] = api.call("GET", f"cases/{case_id}/").json()


def download_mask(api: Api, url: str, target: Path) -> None:
    if target.exists() and target.stat().st_size > 0:
        return
    response = api.call("GET", url, headers={"Accept": "image/png"})
    partial = target.with_suffix(".part")
    partial.write_bytes(response.content)
    partial.replace(target)


def result_rows(files: list[Path], folder: Path, out: Path, records: dict[str, dict],
                cases: dict[str, dict], masks: bool) -> tuple[list[dict], list[tuple[str, Path]]]:
    """One CSV row per file, and the masks to download (URL, target under OUT/masks)."""
    rows, downloads = [], []
    for path in files:
        relative = str(path.relative_to(folder))
        record = records.get(relative, {})
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
            if image["mask_url"] and masks:
                target = out / "masks" / mask_name(relative)
                row["mask_file"] = str(target.relative_to(out))
                downloads.append((image["mask_url"], target))
        rows.append(row)
    return rows, downloads


def download_masks(api: Api, downloads: list[tuple[str, Path]], concurrency: int, show: bool) -> None:
    with futures.ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(tqdm(pool.map(lambda d: download_mask(api, *d), downloads), total=len(downloads),
                  desc="masks", unit="png", disable=not show or not downloads))


def write_csv(rows: list[dict], path: Path) -> None:
    partial = path.with_suffix(".part")
    with open(partial, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    partial.replace(path)
