"""Fixtures of the browser tests: the clinician who logs in, and finished cases made in-process
(before Playwright starts: its sync API runs an event loop in the test's thread, and Django
refuses database calls from inside one)."""

import pytest

from tests.support.browser import PASSWORD


@pytest.fixture
def clinician(make_user):
    return make_user("dr-browser", password=PASSWORD)


def finished_case(owner, uploads, reference=None):
    """A case of ``uploads``, each image analysed here by a StubPredictor, always (CaseFactory:
    a session's real worker never gets there first)."""
    from tests.support.factories import CaseFactory
    from tests.support.stubs import StubPredictor

    return CaseFactory(owner=owner, uploads=uploads, client_reference=reference,
                       predictor=StubPredictor())


@pytest.fixture
def long_named_case(clinician):
    """A finished case whose file name, reference and result are long and unbroken, as real ones
    are (SIIM names are 60-character UIDs)."""
    from tests.support.factories import UploadFactory

    name = "1.2.276.0.7230010.3.1.4.8323329.5797.1517875190.762694" * 2 + ".dcm"
    return finished_case(clinician, [UploadFactory(name=name)], reference="ward-7/" + "x" * 80)


@pytest.fixture
def multi_image_case(clinician):
    """A finished case of three images: two DICOMs and a PNG."""
    from tests.support.factories import UploadFactory

    uploads = [UploadFactory(extension="dcm", index=0), UploadFactory(extension="dcm", index=1),
               UploadFactory(extension="png", index=0)]
    return finished_case(clinician, uploads, reference="ward-3/bed-12")
