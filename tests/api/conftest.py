"""Fixtures for the REST API tests: token clients, and cases whose job has run in-process through
the real pipeline service with the stub predictor of tests/support (a fixed square mask, so results
do not depend on the model file)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.support.data import subset_image
from tests.support.stubs import StubPredictor


@pytest.fixture(autouse=True)
def _fresh_throttle_counts(settings):
    """Each test counts from zero, in a local-memory cache of its own (the configured one is the
    broker's Redis database: clearing that would drop queued jobs)."""
    from webapp.api.throttling import _cache

    settings.API_THROTTLE_CACHE_URL = "locmemcache://api-throttle-tests"
    _cache(settings.API_THROTTLE_CACHE_URL).clear()


@pytest.fixture
def token_client(db):
    from rest_framework.test import APIClient

    from tests.support.tokens import issue_key

    keys = {}  # one token per user per test, as before (a key cannot be read back later)

    def make(user=None):
        client = APIClient(REMOTE_ADDR="10.4.5.6")
        if user is not None:
            if user.pk not in keys:
                keys[user.pk] = issue_key(user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {keys[user.pk]}")
        return client
    return make


@pytest.fixture
def xray_file():
    def make(extension="dcm", index=0, name=None, data=None):
        path = subset_image(extension, index)
        return SimpleUploadedFile(name or path.name, path.read_bytes() if data is None else data)
    return make


@pytest.fixture
def api_case(token_client, xray_file):
    """POST a case through the API as ``user``; returns the JSON body."""
    def make(user, extension="dcm", index=0, **fields):
        response = token_client(user).post("/api/v1/cases/", {"images": [xray_file(extension, index)],
                                                              **fields}, format="multipart")
        assert response.status_code == 201, response.content
        return response.json()
    return make


@pytest.fixture
def run_jobs():
    """Run every queued job of a case in-process (real pipeline service, stub predictor)."""
    def run(case_id):
        from webapp.cases.models import Job
        from webapp.cases.services.pipeline import analyse_job

        predictor = StubPredictor()
        for job in Job.objects.filter(image__case_id=case_id, status="queued"):
            assert analyse_job(job.pk, predictor) == "done"
    return run


@pytest.fixture
def api_done_case(owner, api_case, run_jobs):
    body = api_case(owner)
    run_jobs(body["id"])
    return body
