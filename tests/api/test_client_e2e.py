"""The command-line client end to end: a live server (pytest-django's live_server, on
127.0.0.1) and a real Celery worker running the real model on 10 real X-rays from the shared
subset; the client is killed mid-upload, its state loses the answers of the uploads after the
second (as if it crashed between the server's commit and the state write), and a restart
uploads nothing twice, waits for the results and writes a CSV that matches the API plus masks."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from tests.support.data import REPO, subset_images

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _pick_images(folder):
    chosen = subset_images("dcm")[:4] + subset_images("jpg")[:4] + subset_images("png")[:2]
    (folder / "ward-b").mkdir(parents=True)
    for index, path in enumerate(chosen):
        target = folder / ("ward-b" if index % 3 == 0 else ".") / path.name
        target.write_bytes(path.read_bytes())
    return chosen


def _client(args, **kwargs):
    return subprocess.Popen([sys.executable, "-m", "triage.client", "submit", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kwargs)


def test_client_submits_resumes_and_writes_results(celery_worker_process, live_server, make_user,
                                                   tmp_path):
    from tests.support.tokens import issue_key
    from webapp.audit.models import AuditEvent
    from webapp.cases.models import Case, CaseImage

    user = make_user("bulk")
    token = issue_key(user)
    folder, out = tmp_path / "xrays", tmp_path / "out"
    chosen = _pick_images(folder)
    args = [str(folder), "--url", live_server.url, "--token", token, "--out", str(out),
            "--concurrency", "3", "--poll", "0.5", "--timeout", "240"]
    state = out / "state.jsonl"

    # First run: killed (SIGKILL, no clean-up) once a few uploads are recorded.
    first = _client(args + ["--no-wait", "--concurrency", "1"])
    deadline = time.monotonic() + 120
    while first.poll() is None and time.monotonic() < deadline:
        if state.exists() and state.read_text().count('"file"') >= 3:
            first.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    first.wait(timeout=30)
    time.sleep(3)  # an upload in flight at the kill still completes on the server: let it
    lines = state.read_text().splitlines()
    created_before_restart = Case.objects.filter(owner=user).count()
    assert created_before_restart >= 3
    # Lose the answers of every upload after the second: the restart must re-send those files,
    # and the server must answer them with the cases it already has (Idempotency-Key).
    kept = [line for line in lines if '"file"' not in line] + \
        [line for line in lines if '"file"' in line][:2]
    state.write_text("\n".join(kept) + "\n")

    second = _client(args + ["--summary-json", str(tmp_path / "summary.json")])
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output.decode(errors="replace")[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["files"] == 10 and summary["skipped"] == 2 and summary["uploaded_now"] == 8
    assert summary["done"] == 10, output.decode(errors="replace")[-3000:]

    # Nothing twice: one case per file, one upload audit row per case.
    cases = Case.objects.filter(owner=user)
    assert cases.count() == 10
    hashes = list(CaseImage.objects.filter(case__owner=user).values_list("sha256", flat=True))
    assert len(hashes) == len(set(hashes)) == 10
    assert AuditEvent.objects.filter(user=user, action="upload", object_type="case").count() == 10
    replayed = [json.loads(line) for line in state.read_text().splitlines()
                if '"replayed": true' in line]
    assert len(replayed) == created_before_restart - 2

    # The CSV matches the API, and the masks are the input's size.
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(os.path.basename(r["file"]) for r in rows) == sorted(p.name for p in chosen)
    api = _api_session(token)
    for row in rows:
        image = api.get(f"{live_server.url}/api/v1/cases/{row['case_id']}/").json()["images"][0]
        assert row["status"] == image["status"] == "done"
        assert float(row["probability"]) == pytest.approx(image["probability"])
        assert row["positive"] == str(image["positive"])
        assert float(row["area_fraction"]) == pytest.approx(image["area_fraction"])
        assert row["area_cm2"] == ("" if image["area_cm2"] is None else str(image["area_cm2"]))
        mask = np.asarray(Image.open(out / row["mask_file"]))
        assert mask.shape == (image["height"], image["width"])
        assert (mask > 0).mean() == pytest.approx(image["area_fraction"], abs=1e-6)

    # A third run finds everything done: it uploads nothing.
    third = _client(args + ["--summary-json", str(tmp_path / "summary3.json")])
    third.communicate(timeout=120)
    assert json.loads((tmp_path / "summary3.json").read_text())["uploaded_now"] == 0
    assert Case.objects.filter(owner=user).count() == 10


def _api_session(token):
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Token {token}"
    return session
