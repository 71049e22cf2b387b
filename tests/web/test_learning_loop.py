"""The learning loop, end to end, with nothing mocked: films read by a real worker, reviewed and
their outlines corrected (webapp.reviews), exported (``manage.py export_feedback --out-dir``),
``ml.train --feedback`` for one short epoch from the registry's active model (at 64 px, on a
handful of shared films), ``ml.evaluate --feedback`` (the site's held-out patient), registered
and promoted through the registry service, a film read by the same worker with the new version,
rollback, and a film read with the old one: the worker never restarts.

Sizes are a test's, not a fine-tune's: what is checked is the plumbing and the guarantees (the
held-out patient never trains, the version each job records), not that the model got better.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from tests.support.data import SHARED_DATA

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HOLDOUT = 0.2  # ml.train's and ml.evaluate's default


def patient_keys(held_out: bool, count: int) -> list[str]:
    """Pseudonymous patient keys (as Case.patient_key holds) that the hash puts on one side."""
    from ml.training.feedback import is_held_out

    found, n = [], 0
    while len(found) < count:
        key = f"{n:064x}"
        if is_held_out(key, HOLDOUT) == held_out:
            found.append(key)
        n += 1
    return found


@pytest.fixture(scope="module")
def shared_rows() -> list[dict]:
    if not (SHARED_DATA / "labels.csv").is_file():
        pytest.fail(f"the shared data set is required at {SHARED_DATA}")
    with open(SHARED_DATA / "labels.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def pick(rows, positive: bool, count: int, used: set, patients: set | None = None,
         outside: bool = False) -> list[dict]:
    """``count`` rows of distinct patients, not used yet, inside (or ``outside``) ``patients``."""
    chosen = []
    for row in rows:
        if ((row["has_pneumothorax"] == "1") != positive or row["image_id"] in used
                or row["patient_id"] in {r["patient_id"] for r in chosen}):
            continue
        if patients is not None and (row["patient_id"] in patients) == outside:
            continue
        chosen.append(row)
        used.add(row["image_id"])
        if len(chosen) == count:
            return chosen
    pytest.fail("not enough shared films")


def mini_subset(root: Path, rows: list[dict]) -> Path:
    """A few shared films in the subset's layout (symlinks): the shared training data here."""
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for row in rows:
        (root / row["image"]).symlink_to(SHARED_DATA / row["image"])
        (root / row["mask"]).symlink_to(SHARED_DATA / row["mask"])
    with open(root / "labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


def test_export_fine_tune_evaluate_promote_serve_and_roll_back(
        celery_worker_process, login, owner, administrator, wait_for_case, shared_rows, tmp_path):
    from ml import cache, evaluate, train
    from ml.core.checkpoint import read_info
    from webapp.cases.models import Case, CaseImage, Job
    from webapp.cases.services.registry import (active_model, ensure_initial_model, file_of, promote,
                                                register_model, registry_dir, roll_back)
    from webapp.reviews.outlines import save_outline
    from webapp.reviews.services import record_review

    pid = celery_worker_process.pid
    client = login(owner)
    ensure_initial_model()  # what a worker does on start: the served file is the active model
    active = file_of(active_model())
    served = read_info(active).version
    held_patients = set(read_info(active).training["config"]["validation_patients"])

    used: set = set()
    shared = (pick(shared_rows, True, 2, used, held_patients) + pick(shared_rows, False, 2, used, held_patients)
              + pick(shared_rows, True, 2, used, held_patients, outside=True)
              + pick(shared_rows, False, 2, used, held_patients, outside=True))
    subset = mini_subset(tmp_path / "subset", shared)

    def read(rows: list[dict]) -> list[CaseImage]:
        """Upload films as one case; the worker reads them; their images, in upload order."""
        uploads = [SimpleUploadedFile(Path(r["image"]).name, (SHARED_DATA / r["image"]).read_bytes())
                   for r in rows]
        payload = wait_for_case(client, _upload(client, uploads))
        assert payload["status"] == "done", payload
        return list(CaseImage.objects.filter(case_id=payload["id"]).order_by("position"))

    # 1. This site's films: three patients (two train, one held out), a positive and a negative
    # each, read by the active model, reviewed; two positives' outlines corrected in the viewer
    # (the radiologists' masks), one positive confirmed by review only.
    site_keys = patient_keys(False, 2) + patient_keys(True, 1)
    films = []
    for n, key in enumerate(site_keys):
        rows = pick(shared_rows, True, 1, used) + pick(shared_rows, False, 1, used)
        images = read(rows)
        Case.objects.filter(pk=images[0].case_id).update(patient_key=key)
        for row, image in zip(rows, images):
            positive = row["has_pneumothorax"] == "1"
            record_review(owner, image, "agree", "present" if positive else "absent")
            if positive and n != 0:
                save_outline(owner, image, (SHARED_DATA / row["mask"]).read_bytes())
            films.append((key, image))
    assert {Job.objects.get(image=image).model_version for _, image in films} == {served}

    # 2. Export.
    export = tmp_path / "export"
    call_command("export_feedback", "--out-dir", str(export))
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["counts"]["images"] == 6 and manifest["counts"]["label_only"] == 1
    assert manifest["model_versions"] == {served: 6}

    # 3. Fine-tune from the active model: one short epoch at 64 px.
    shared_cache = tmp_path / "cache"
    cache.main(["--layout", "subset", "--root", str(subset), "--size", "64", "--workers", "1",
                "--out", str(shared_cache)])
    candidate_file = train.main(["--cache", str(shared_cache), "--out", str(tmp_path / "run"),
                                 "--feedback", str(export), "--init", str(active), "--epochs", "1",
                                 "--batch-size", "4", "--feedback-fraction", "0.5", "--quiet"])
    config = read_info(candidate_file).training["config"]
    assert config["site"]["train_images"] == 4 and config["site"]["held_out_images"] == 2
    assert config["validation_patients"] == sorted(held_patients)  # the frozen ones stay out
    assert config["train_images"] == 4 and config["validation_images"] == 4
    site_cache = (tmp_path / "run" / "site-cache" / "index.csv").read_text()
    held_out_ids = [str(image.pk) for key, image in films if key == site_keys[2]]
    assert not any(image_id in site_cache for image_id in held_out_ids)  # never trained on

    # 4. Evaluate: the shared calibration and test halves, and the site's held-out patient.
    report = evaluate.main(["--model", str(candidate_file), "--layout", "subset", "--root", str(subset),
                            "--feedback", str(export), "--set-operating-point",
                            "--out", str(tmp_path / "eval"), "--quiet"])
    assert report["site"]["images"] == 2 and report["site"]["patients"] == 1
    assert report["site"]["read_by"] == {served: 2} and report["site"]["outlined_positives"] == 1
    assert report["calibration"]["images"] == 2 and report["test"]["images"] == 2

    # 5. Register with its report, promote; the same worker reads the next film with it.
    candidate = register_model(candidate_file, tmp_path / "eval" / "report.json", by=administrator)
    try:
        assert candidate.report["site"]["images"] == 2 and candidate.version != served
        promote(candidate, by=administrator)
        time.sleep(settings.MODEL_REGISTRY_CHECK_S + 0.5)  # the worker's next look at the registry
        new = Job.objects.get(image=read(pick(shared_rows, True, 1, used))[0])
        assert new.model_version == candidate.version

        # 6. Roll back: the old model reads the next film, in the same worker.
        assert roll_back(by=administrator).version == served
        time.sleep(settings.MODEL_REGISTRY_CHECK_S + 0.5)
        old = Job.objects.get(image=read(pick(shared_rows, True, 1, used))[0])
        assert old.model_version == served
        assert celery_worker_process.pid == pid and celery_worker_process.poll() is None  # never restarted
        assert new.worker == old.worker
    finally:
        (registry_dir() / f"{candidate.version}.safetensors").unlink(missing_ok=True)


def _upload(client, uploads) -> str:
    from tests.support.pages import upload_through_page

    return upload_through_page(client, uploads)
