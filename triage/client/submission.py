"""Submitting: one batch per folder, one case per file. Both POSTs carry an Idempotency-Key
derived from what they submit (the folder's listing, the file's content), so a request whose
answer was lost is answered by the server with what it already created."""

from __future__ import annotations

import hashlib
from pathlib import Path

from triage.client.files import CONTENT_TYPES, sha256_file
from triage.client.api import Api
from triage.client.state import State


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
