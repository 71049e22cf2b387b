"""Shared test fixtures. Kept light on purpose: tests/ml/ runs under the same pytest and needs no
database; the fixtures below touch the database only when a test asks for them."""

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUBSET = (REPO / ".." / "shared" / "data" / "siim-acr-subset").resolve()
ARTIFACTS = REPO / "test-artifacts"


def subset_image(extension: str) -> Path:
    """The first image of the shared SIIM-ACR subset with this extension (dcm, png, jpg)."""
    paths = sorted((SUBSET / "images").glob(f"*.{extension}"))
    if not paths:
        pytest.fail(f"No *.{extension} in {SUBSET}/images: the shared data set is required")
    return paths[0]


class Upload:
    """A minimal uploaded file for calling services directly."""

    def __init__(self, name, data):
        self.name, self._data, self.size = name, data, len(data)

    def read(self, n=-1):
        return self._data if n < 0 else self._data[:n]


@pytest.fixture
def upload_file():
    def make(extension="dcm", name=None, data=None):
        path = subset_image(extension)
        return Upload(name or path.name, path.read_bytes() if data is None else data)
    return make


@pytest.fixture
def make_user(db):
    def make(username, role="clinician", password="correct-horse-battery-9"):
        from webapp.accounts.models import User

        user = User(username=username, role=role)
        user.set_password(password)
        user.save()
        return user
    return make


@pytest.fixture
def owner(make_user):
    return make_user("owner")


@pytest.fixture
def other(make_user):
    return make_user("other")


@pytest.fixture
def administrator(make_user):
    return make_user("administrator", role="admin")


@pytest.fixture
def login():
    from django.test import Client

    def make(user):
        client = Client(REMOTE_ADDR="10.1.2.3")
        client.force_login(user)
        return client
    return make


# Real processes for tests/faults and tests/bad_inputs (own Redis, a PostgreSQL proxy, one fault
# worker), shared by both suites: session fixtures must live here to be shared (issue 5).
from tests.reliability_harness import db_proxy, fault_worker, live_worker, own_redis  # noqa: E402,F401


# The real Celery worker fixtures, shared by tests/e2e and tests/api (one worker per session).
from tests.worker_fixtures import celery_worker_process, wait_for_case  # noqa: E402,F401
