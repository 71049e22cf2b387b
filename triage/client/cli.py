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
import json
import os
import sys
from pathlib import Path

import requests

from triage.client.api import ClientError
from triage.client.run import submit


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m triage.client", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("submit", help="upload a folder, wait, write results.csv + masks")
    p.add_argument("dir")
    p.add_argument("--url", default=os.environ.get("TRIAGE_URL", "http://127.0.0.1:8000"))
    p.add_argument("--token", default=os.environ.get("TRIAGE_TOKEN"),
                   help="API token (or TRIAGE_TOKEN), from the site's API tokens page")
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
    return parser


def main(argv=None) -> int:
    command_line = parser()
    args = command_line.parse_args(argv)
    if not args.token:
        command_line.error("--token (or TRIAGE_TOKEN) is required")
    if args.concurrency < 1:
        command_line.error("--concurrency must be at least 1")
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
