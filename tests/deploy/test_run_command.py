"""``scripts/run``, the README's run command, started for real on the embedded defaults: it serves
the site without Django's debug pages and runs web, worker and reconciler. It runs with
``--demo`` on a two-film copy of the shared subset (docs/use/first-look.md): the demo adds a
few seconds, not the seven films' reading."""

import csv
import os
import re
import signal
import subprocess

import pytest
import requests

from tests.support.data import REPO, SHARED_DATA
from tests.support.processes import free_port, run_command_environment, wait_until_serving
from tests.support.two_factor import set_up_over_http

pytestmark = pytest.mark.slow

PASSWORD = "run-command-test-password-1"


def two_film_subset(folder):
    """A copy of the shared subset's layout with the demo's first positive and first negative
    (webapp.cases.services.demo.choose_films), the images linked, not copied."""
    from webapp.cases.services.demo import choose_films

    films = {f.path.name for f in choose_films(SHARED_DATA, positives=1, negatives=1)}
    (folder / "images").mkdir(parents=True)
    with (SHARED_DATA / "labels.csv").open(newline="") as source:
        reader = csv.DictReader(source)
        rows = [r for r in reader if r["image"].rsplit("/", 1)[-1] in films]
    with (folder / "labels.csv").open("w", newline="") as target:
        writer = csv.DictWriter(target, fieldnames=reader.fieldnames)
        writer.writeheader()
        writer.writerows(rows)
    for row in rows:
        (folder / row["image"]).symlink_to(SHARED_DATA / row["image"])
    return folder


@pytest.fixture
def running_product(tmp_path):
    port = free_port()
    env = run_command_environment(
        tmp_path, port,
        DJANGO_SUPERUSER_USERNAME="admin", DJANGO_SUPERUSER_PASSWORD=PASSWORD,
        DJANGO_SUPERUSER_EMAIL="admin@example.org",
        DJANGO_DEBUG="true",  # must not switch the debug pages on
        WEB_CONCURRENCY="1", DEMO_DATA_DIR=str(two_film_subset(tmp_path / "subset")))
    log_path = tmp_path / "run.log"
    log = open(log_path, "wb")
    process = subprocess.Popen(["bash", "scripts/run", "--demo"], cwd=REPO, env=env, stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    wait_until_serving(f"{url}/login/", process, log_path, 300, "scripts/run")
    try:
        yield url, process, log_path
    finally:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C, as a person stops it
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def descendants(pid: int) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True)
    found = []
    for line in out.stdout.splitlines():
        child, _, args = line.strip().partition(" ")
        found.append(args)
        found += descendants(int(child))
    return found


def test_run_command_serves_without_debug_pages_runs_the_reconciler_and_the_demo(running_product):
    url, process, log_path = running_product
    session = requests.Session()
    page = session.get(f"{url}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(f"{url}/login/", data={"username": "admin", "password": PASSWORD,
                                        "csrfmiddlewaretoken": token}, timeout=10)
    set_up_over_http(session, url)  # an administrator's second factor first (issue 24)
    missing = session.get(f"{url}/cases/00000000-0000-0000-0000-000000000000/", timeout=10)
    assert missing.status_code == 404
    # Django's technical 404 lists the URL patterns; the product's own page does not.
    assert "URLconf" not in missing.text and "DEBUG = True" not in missing.text
    assert session.get(f"{url}/no-such-page/", timeout=10).status_code == 404

    children = " | ".join(descendants(process.pid))
    for part in ("gunicorn webapp.wsgi", "celery -A workers worker -Q cpu",
                 "celery -A webapp.celery_app worker -Q dicom,alerts", "reconcile_jobs --every 60"):
        assert part in children, children
    assert "webapp.settings.development" not in log_path.read_text()

    # --demo: the films went in before the start, and the log-in is printed with the address.
    log = log_path.read_text()
    assert "seed_demo: 2 film(s) added to the worklist of 'demo'" in log
    running = log.index("Pneumothorax Triage is running:")
    assert "Demo log-in: user demo, password demo-triage-first-look" in log[running:]
    session = requests.Session()
    page = session.get(f"{url}/login/", timeout=10)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(f"{url}/login/", data={"username": "demo", "password": "demo-triage-first-look",
                                        "csrfmiddlewaretoken": token}, timeout=10)
    assert session.get(f"{url}/cases/worklist.json", timeout=10).json()["count"] == 2
