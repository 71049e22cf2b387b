"""Fixtures for tests of the web app without a worker: jobs are run in-process by the real
pipeline service with a stub predictor (these tests are about access and flow, not the model)."""

import pytest

from tests.support.factories import CaseFactory
from tests.support.stubs import StubPredictor


@pytest.fixture
def stub_predictor():
    return StubPredictor()


@pytest.fixture
def make_case():
    def make(user, extension="dcm"):
        return CaseFactory(owner=user, extension=extension)
    return make


@pytest.fixture
def done_case(owner, stub_predictor):
    """A case of ``owner`` whose job has finished (mask and overlay stored)."""
    return CaseFactory(owner=owner, predictor=stub_predictor)
