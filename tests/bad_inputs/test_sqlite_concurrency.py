"""On the embedded SQLite default (a real gunicorn with threads, as ``scripts/run`` starts it), a
slow upload does not hold up another user's worklist: the files are read outside any
transaction, and only storing the case takes SQLite's one write lock (issue 21: every request
used to open with BEGIN IMMEDIATE and hold the lock while its files were decoded, and another
user's list waited 7-17 s)."""

import threading
import time

import pytest

from tests.bad_inputs import hostile
from tests.support.data import ARTIFACTS
from tests.support.embedded import EmbeddedSite

pytestmark = pytest.mark.slow

PASSWORD = "embedded-test-password-1"
LIST_LATENCY_S = 1.5


@pytest.fixture
def site(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    embedded = EmbeddedSite(tmp_path)
    for name in ("uploader", "reader"):
        embedded.create_user(name, PASSWORD)
    embedded.start_web(ARTIFACTS / "sqlite-concurrency-web.log")
    yield embedded
    embedded.stop()


def test_a_slow_upload_does_not_hold_up_another_users_list(site):
    # Legitimate but slow to check: progressive JPEGs whose largest scan repeats (60 scans, under
    # the limit), a second or two each to decode on two busy cores.
    files = [(f"slow-{n}.jpg", hostile.many_scan_jpeg(60, 4096, repeat="last")) for n in range(4)]
    uploader, reader = site.login("uploader", PASSWORD), site.login("reader", PASSWORD)
    assert reader.get(f"{site.url}/", timeout=30).status_code == 200
    done = {}

    def upload():
        started = time.monotonic()
        done["case"] = site.upload(uploader, files)
        done["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=upload)
    thread.start()
    time.sleep(0.5)  # the upload's body is sent and its check has begun
    latencies = []
    while thread.is_alive():
        started = time.monotonic()
        response = reader.get(f"{site.url}/", timeout=60)
        assert response.status_code == 200
        latencies.append(time.monotonic() - started)
        time.sleep(0.1)
    thread.join()
    assert done.get("case"), "the slow upload failed"
    assert done["seconds"] > 2 * LIST_LATENCY_S, done  # slow enough for the lists to overlap it
    assert len(latencies) >= 3 and max(latencies) < LIST_LATENCY_S, (done, latencies)
