"""pytest plugin: a real Orthanc (Debian's ``orthanc``) and dcmtk's SCUs for the PACS tests. No
mocks, no skips: scripts/test installs both packages, so a missing binary fails the test with
the reason. Each Orthanc's log is copied to test-artifacts/orthanc/ at teardown."""

import shutil

import pytest

from tests.support import dcmtk as _dcmtk
from tests.support.data import ARTIFACTS
from tests.support.orthanc import Orthanc, orthanc_binary

__all__ = ["orthanc_factory", "dcmtk", "dicom_listener"]

MISSING_ORTHANC = ("Orthanc is not installed (no `Orthanc` on PATH or in /usr/sbin): the PACS "
                   "tests need Debian's orthanc package; scripts/test installs it "
                   "(apt-get install orthanc)")
MISSING_DCMTK = ("dcmtk's storescu/echoscu are not installed: the PACS tests need Debian's dcmtk "
                 "package; scripts/test installs it (apt-get install dcmtk)")


@pytest.fixture
def orthanc_factory(tmp_path, request):
    """``make(modalities=None, *, aet="ORTHANC", name=None, start=True, **configuration)``: an
    Orthanc in its own folder under ``tmp_path``, on free loopback ports, with these
    ``DicomModalities`` (e.g. ``{"triage": ["TRIAGE", "127.0.0.1", 11112]}``), started unless
    ``start=False``; keyword arguments override its configuration. All stopped at teardown."""
    made: list[Orthanc] = []

    def make(modalities=None, *, aet="ORTHANC", name=None, start=True, **configuration):
        if orthanc_binary() is None:
            pytest.fail(MISSING_ORTHANC)
        workdir = tmp_path / f"orthanc-{name or len(made)}"
        orthanc = Orthanc(workdir, modalities=modalities, aet=aet,
                          extra_configuration=configuration or None)
        made.append(orthanc)
        if start:
            orthanc.start()
        return orthanc

    yield make
    for index, orthanc in enumerate(made):
        orthanc.stop()
        if orthanc.log_path.exists():
            logs = ARTIFACTS / "orthanc"
            logs.mkdir(parents=True, exist_ok=True)
            safe_name = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.name)
            shutil.copyfile(orthanc.log_path, logs / f"{safe_name}-{index}.log")


@pytest.fixture
def dcmtk():
    """tests.support.dcmtk (storescu, echoscu), once its binaries are known to be there."""
    if not _dcmtk.available():
        pytest.fail(MISSING_DCMTK)
    return _dcmtk


@pytest.fixture
def dicom_listener(settings, request):
    """``manage.py dicom_listener`` as a real process on a free port, on the test database (its
    log in test-artifacts/, named after the test module)."""
    from tests.support.connections import process_environment
    from tests.support.listener import DicomListener

    log = ARTIFACTS / f"dicom-listener-{request.module.__name__.rsplit('.', 1)[-1]}.log"
    process = DicomListener(process_environment(settings), log)
    process.start()
    yield process
    process.stop()
