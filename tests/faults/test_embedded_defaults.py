"""The embedded defaults (SQLite + kombu's filesystem broker, what ``scripts/run`` uses on a bare
machine) under the faults that PostgreSQL + Redis are tested with: a whole worker killed mid-job,
and a browser fetching a case's images all at once."""

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.data import ARTIFACTS, subset_image
from tests.support.embedded import EmbeddedSite
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.faults, pytest.mark.slow]

PASSWORD = "embedded-test-password-1"


@pytest.fixture
def site(tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    embedded = EmbeddedSite(tmp_path, faults=True)
    embedded.create_user("clinician", PASSWORD)
    embedded.start_web(ARTIFACTS / "embedded-web.log")
    yield embedded
    embedded.stop()


def job_rows(site, case_id):
    return site.query(
        "SELECT j.id, j.status, j.attempts, j.worker, j.mask, j.error FROM cases_job j "
        "JOIN cases_caseimage i ON i.id = j.image_id WHERE i.case_id = ? ORDER BY i.position",
        case_id.replace("-", ""))


def test_whole_worker_sigkilled_and_restarted_finishes_its_job_on_sqlite_and_filesystem_broker(site):
    """kombu's filesystem transport deletes a message when it hands it out: after a SIGKILL of
    the whole worker nothing would ever deliver the job again. The restarted worker (same node
    name) sends its orphans again at start-up."""
    worker = site.worker(ARTIFACTS / "embedded-worker.log")
    worker.start()
    try:
        session = site.login("clinician", PASSWORD)
        case_id = site.upload(session, [("fault-slow-embedded.png", subset_image("png").read_bytes())])
        wait_until(lambda: job_rows(site, case_id)[0][1] == "running", 90, 0.2, "the job to run")
        worker.kill_all()
        assert job_rows(site, case_id)[0][1] == "running"

        worker.start(same_name=True)
        wait_until(lambda: job_rows(site, case_id)[0][1] in ("done", "failed"),
                   max(1.0, 60 - (time.monotonic() - worker.started_at)), 0.2, "the job to finish")
        assert time.monotonic() - worker.started_at <= 60
        [(_, status, attempts, name, mask, error)] = job_rows(site, case_id)
        assert (status, attempts, error) == ("done", 2, "")
        assert name == worker.nodename and mask
        masks = list((site.folder / "media").rglob("mask-*.png"))
        assert len(masks) == 1, masks  # one result: the run that finished
    finally:
        worker.stop()


def test_concurrent_image_requests_of_one_case_on_sqlite_all_succeed_with_audit_rows(site):
    """A browser fetches a case's images in parallel; each fetch writes an audit row in its own
    transaction. On SQLite's defaults some of them fail with 'database is locked' (a 503)."""
    session = site.login("clinician", PASSWORD)
    data = subset_image("png").read_bytes()
    case_id = site.upload(session, [(f"film-{n}.png", data) for n in range(6)])
    image_ids = [row[0] for row in site.query(
        "SELECT id FROM cases_caseimage WHERE case_id = ? ORDER BY position", case_id.replace("-", ""))]
    assert len(image_ids) == 6

    def uuid(hex_id):
        return f"{hex_id[:8]}-{hex_id[8:12]}-{hex_id[12:16]}-{hex_id[16:20]}-{hex_id[20:]}"

    urls = [f"{site.url}/cases/{case_id}/images/{uuid(image_id)}/{kind}.png"
            for image_id in image_ids for kind in ("preview", "original")]
    before = site.query("SELECT COUNT(*) FROM audit_auditevent WHERE action IN ('view_image', 'download')")[0][0]
    with ThreadPoolExecutor(max_workers=12) as pool:
        responses = list(pool.map(lambda url: session.get(url, timeout=60), urls))
    assert [r.status_code for r in responses] == [200] * 12, [r.text[:300] for r in responses]
    assert all(r.content for r in responses)
    after = site.query("SELECT COUNT(*) FROM audit_auditevent WHERE action IN ('view_image', 'download')")[0][0]
    assert after - before == 12
