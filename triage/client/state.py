"""What has been uploaded, kept so that a restart never uploads twice."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


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
