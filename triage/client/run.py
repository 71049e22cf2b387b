"""The whole job of ``submit``: upload a folder (resuming where a previous run stopped), wait for
the results, write them. Returns a summary (counts, timings, CPU time)."""

from __future__ import annotations

import concurrent.futures as futures
import resource
import sys
import time
from pathlib import Path

from tqdm import tqdm

from triage.client import results
from triage.client.api import Api, ClientError
from triage.client.files import find_files
from triage.client.state import State
from triage.client.submission import open_batch, upload_one


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
    results.wait_for_batch(api, batch, in_batch, args.timeout, args.poll, show)
    cases = results.fetch_cases(api, batch, case_ids)
    results.wait_for_cases(api, cases, case_ids, args.timeout, args.poll)
    timings["wait_s"] = time.perf_counter() - t

    t = time.perf_counter()
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows, downloads = results.result_rows(files, folder, out, state.files, cases,
                                          masks=not args.no_masks)
    results.download_masks(api, downloads, args.concurrency, show)
    csv_path = out / "results.csv"
    results.write_csv(rows, csv_path)
    timings["results_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    summary.update(csv=str(csv_path), done=sum(r["status"] == "done" for r in rows),
                   failed=sum(r["status"] == "failed" for r in rows), masks=len(downloads),
                   requests=api.requests, timings=timings,
                   cpu_s={"user": usage.ru_utime, "system": usage.ru_stime})
    return summary
