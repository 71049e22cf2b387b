"""The worklist with 1,000 cases in PostgreSQL: time of the page and of the JSON it polls.

    .venv/bin/python bench/worklist_page.py [--cases 1000] [--runs 30]

What runs: PostgreSQL on 127.0.0.1 (or DATABASE_URL), a fresh database ``pneumothorax_bench``
migrated from scratch, filled with ``--cases`` cases of one clinician (one image each, jobs in
every state, a quarter positive, some flagged review first, findings stored), and the real
Django views called in-process through Django's test client, logged in: the worklist page
(urgency order, the default), the same page filtered (``result=positive``) and its JSON
(``worklist.json``), each ``--runs`` times after one warm-up. Loopback HTTP is left out (a few
ms). Rows are inserted with ``bulk_create``: the worklist reads the database, never the files,
so no image is stored. Prints the median and the 95th percentile of each, in ms.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.bench import django_on_fresh_database  # noqa: E402


def fill(cases: int, owner) -> None:
    from django.utils import timezone

    from webapp.cases.models import Case, CaseImage, Job, JobStatus

    rng = random.Random(0)
    now = timezone.now()
    made = Case.objects.bulk_create([
        Case(owner=owner, client_reference=f"bench-{i:05d}",
             study_metadata={"StudyDate": "20261201", "ViewPosition": "PA", "PatientSex": "F"})
        for i in range(cases)])
    images = CaseImage.objects.bulk_create([
        CaseImage(case=case, original=f"cases/{case.pk}/x/original.dcm", original_name=f"chest-{i}.dcm",
                  source_format="dicom", content_type="application/dicom", size_bytes=500_000,
                  sha256=f"{i:064d}", width=1024, height=1024, pixel_spacing_mm=[0.143, 0.143])
        for i, case in enumerate(made)])
    jobs = []
    for i, image in enumerate(images):
        state = JobStatus.DONE if i % 20 else rng.choice([JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED])
        probability = rng.random()
        positive = state == JobStatus.DONE and probability > 0.75
        jobs.append(Job(
            image=image, status=state, probability=probability if state == JobStatus.DONE else None,
            positive=positive if state == JobStatus.DONE else None,
            review_first=state == JobStatus.DONE and probability > 0.6,
            area_fraction=0.02 if positive else 0.0, model_version="bench-model",
            finished_at=now if state in (JobStatus.DONE, JobStatus.FAILED) else None,
            error="bench failure" if state == JobStatus.FAILED else "",
            findings={"side": "right", "zones": ["apical"], "rim_depth_mm": 12.0, "large": False,
                      "area_percent": 2.0, "in_words": "Right, apical; rim 12 mm"} if positive else {}))
    Job.objects.bulk_create(jobs)


def timed(client, url: str, runs: int) -> list[float]:
    assert client.get(url).status_code == 200  # warm-up, and a check
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    django_on_fresh_database()
    from django.test import Client

    from webapp.accounts.models import User

    owner = User.objects.create_user("bench-clinician", password="bench-password-1")
    started = time.perf_counter()
    fill(args.cases, owner)
    print(f"filled {args.cases} cases in {time.perf_counter() - started:.1f} s "
          f"({os.environ['DATABASE_URL'].rsplit('/', 1)[-1]})")
    client = Client()
    client.force_login(owner)
    print(f"{'request':<40} {'median ms':>10} {'p95 ms':>8}")
    for label, url in [("worklist page (urgency)", "/cases/"),
                       ("worklist page, positive only", "/cases/?result=positive"),
                       ("worklist.json (polled every 3 s)", "/cases/worklist.json"),
                       ("worklist page 20 of 40", "/cases/?page=20")]:
        times = sorted(timed(client, url, args.runs))
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))]
        print(f"{label:<40} {statistics.median(times):>10.1f} {p95:>8.1f}")


if __name__ == "__main__":
    main()
