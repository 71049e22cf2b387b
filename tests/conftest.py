"""Shared test fixtures. Kept light on purpose: tests/ml/ runs under the same pytest and needs no
database; the fixtures below touch the database only when a test asks for them. What they are
made of lives in tests/support (data paths, processes, stubs, factories); the session's worker
processes are fixtures of the plugins registered here, shared by every folder."""

import pytest

pytest_plugins = ["tests.support.worker_fixtures", "tests.support.fault_fixtures",
                  "tests.support.pacs_fixtures"]


@pytest.fixture(autouse=True)
def test_client_logins_pass_two_factor():
    """The test client's log-ins of administrators come with a verified second factor
    (tests/support/two_factor.py), so that every test runs under production's rule; the tests of
    two-factor itself sign in through the real pages (tests/security/test_two_factor.py)."""
    from django.contrib.auth.signals import user_logged_in

    from tests.support.two_factor import verify_test_client_logins

    user_logged_in.connect(verify_test_client_logins, dispatch_uid="tests-two-factor")
    yield
    user_logged_in.disconnect(dispatch_uid="tests-two-factor")


@pytest.fixture
def upload_file():
    """An uploaded file of a shared image (``extension``), or of a ``name`` and ``data`` given."""
    from tests.support.factories import UploadFactory

    def make(extension="dcm", name=None, data=None):
        given = {key: value for key, value in (("name", name), ("data", data)) if value is not None}
        return UploadFactory(extension=extension, **given)
    return make


@pytest.fixture
def make_user(db):
    from tests.support.factories import PASSWORD, UserFactory

    def make(username, role="clinician", password=PASSWORD):
        return UserFactory(username=username, role=role, password=password)
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
