"""The PACS test infrastructure itself, against a real Orthanc (Debian's package) with real
files of the shared SIIM-ACR subset: it starts, stores, finds, survives a restart, answers
C-ECHO, accepts C-STORE from dcmtk's storescu, and sends (C-STORE SCU) to a pynetdicom storage
SCP: the route Orthanc -> our listener at the protocol level. Also what Orthanc does with a
SOP Instance UID it already holds, which the result sender's "exactly once" relies on."""

from __future__ import annotations

import io
import json
import threading
import time

import pydicom
import pytest
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, StoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from tests.support.data import REPO, subset_image
from tests.support.processes import ProcessError, free_port


def shared_dicom(index: int = 0):
    path = subset_image("dcm", index)
    return path, path.read_bytes(), pydicom.dcmread(path)


def modified_copy(dataset, **elements) -> bytes:
    """The dataset, with these elements changed, as a file (same UIDs unless changed)."""
    copy = pydicom.dcmread(io.BytesIO(_file_bytes(dataset)))
    for name, value in elements.items():
        setattr(copy, name, value)
    return _file_bytes(copy)


def _file_bytes(dataset) -> bytes:
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


class StorageSCP:
    """A minimal pynetdicom storage SCP on a free loopback port: every storage SOP class, every
    transfer syntax; it keeps what it receives (dataset, calling AE title)."""

    def __init__(self, ae_title: str = "TRIAGE"):
        self.ae_title, self.port = ae_title, free_port()
        self.received: list[tuple[str, pydicom.Dataset]] = []
        self.arrived = threading.Event()
        self.server = None

    def _on_store(self, event):
        dataset = event.dataset
        dataset.file_meta = event.file_meta
        self.received.append((event.assoc.requestor.ae_title, dataset))
        self.arrived.set()
        return 0x0000

    def start(self) -> "StorageSCP":
        ae = AE(ae_title=self.ae_title)
        for context in StoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_STORE, self._on_store)])
        return self

    def stop(self):
        if self.server is not None:
            self.server.shutdown()


@pytest.fixture
def storage_scp():
    scp = StorageSCP().start()
    yield scp
    scp.stop()


def c_echo(host: str, port: int, called_aet: str) -> int:
    """C-ECHO from pynetdicom; the status (0x0000: success)."""
    ae = AE(ae_title="ECHOTEST")
    ae.add_requested_context(Verification)
    assoc = ae.associate(host, port, ae_title=called_aet)
    assert assoc.is_established, f"Orthanc refused the association from {host}:{port}"
    try:
        status = assoc.send_c_echo()
        return status.Status
    finally:
        assoc.release()


def c_store(host: str, port: int, called_aet: str, dataset, calling_aet="RESULTS") -> int:
    """C-STORE of one dataset from pynetdicom (its own transfer syntax); the status."""
    ae = AE(ae_title=calling_aet)
    ae.add_requested_context(dataset.SOPClassUID, dataset.file_meta.TransferSyntaxUID)
    assoc = ae.associate(host, port, ae_title=called_aet)
    assert assoc.is_established
    try:
        return assoc.send_c_store(dataset).Status
    finally:
        assoc.release()


def test_orthanc_stores_finds_and_keeps_instances_across_a_restart(orthanc_factory):
    orthanc = orthanc_factory({"triage": ["TRIAGE", "127.0.0.1", free_port()]})
    assert orthanc.get_json("/system")["DicomAet"] == "ORTHANC"
    assert orthanc.get_json("/plugins") == ["explorer.js"]  # built in; no shared library loaded
    path, data, dataset = shared_dicom()

    answer = orthanc.upload_status(data)
    assert answer["Status"] == "Success"
    instance = answer["ID"]
    study = orthanc.study_of(instance)
    assert orthanc.find_studies_by_uid(dataset.StudyInstanceUID) == [study]
    assert orthanc.find_studies_by_uid("1.2.3.4.5.6.7.8.9") == []
    [stored] = orthanc.instances_of_study(study)
    assert stored["ID"] == instance
    assert stored["SOPClassUID"] == dataset.SOPClassUID
    assert stored["SOPInstanceUID"] == dataset.SOPInstanceUID
    assert stored["SeriesInstanceUID"] == dataset.SeriesInstanceUID
    assert stored["Modality"] == "CR"
    assert orthanc.file_of(instance) == data  # stored as received, byte for byte
    assert orthanc.get_json("/modalities") == ["triage"]

    orthanc.restart()  # same folder, same ports: what it stored is still there
    assert orthanc.count_instances() == 1
    assert orthanc.find_studies_by_uid(dataset.StudyInstanceUID) == [study]
    assert orthanc.file_of(instance) == data


def test_orthanc_answers_c_echo_from_pynetdicom_and_dcmtk(orthanc_factory, dcmtk):
    orthanc = orthanc_factory()
    assert c_echo(orthanc.host, orthanc.dicom_port, "ORTHANC") == 0x0000
    echo = dcmtk.echoscu(orthanc.host, orthanc.dicom_port, called_aet="ORTHANC")
    assert echo.returncode == 0, dcmtk.output(echo)
    assert "Received Echo Response (Success)" in dcmtk.output(echo)


def test_a_sop_instance_stored_twice_is_kept_once(orthanc_factory, dcmtk):
    """Orthanc (OverwriteInstances false, its default) answers a second C-STORE of an instance it
    holds with Success and keeps the first copy: one instance, unchanged, even when the second
    copy differs. A result sent again (a retried task) does not appear twice."""
    orthanc = orthanc_factory()
    path, data, dataset = shared_dicom()
    first = orthanc.upload(data)

    for _ in range(2):  # the same file again, by C-STORE from dcmtk
        sent = dcmtk.storescu(orthanc.host, orthanc.dicom_port, path, calling_aet="MODALITY",
                              called_aet="ORTHANC")
        assert dcmtk.store_succeeded(sent), dcmtk.output(sent)
    assert orthanc.count_instances() == 1
    assert orthanc.all_instances() == [first]

    changed = modified_copy(dataset, SeriesDescription="sent again, changed")
    assert orthanc.upload_status(changed)["Status"] == "AlreadyStored"
    assert c_store(orthanc.host, orthanc.dicom_port, "ORTHANC",
                   pydicom.dcmread(io.BytesIO(changed))) == 0x0000
    assert orthanc.count_instances() == 1
    assert orthanc.tags_of(first)["SeriesDescription"] == dataset.SeriesDescription
    assert orthanc.file_of(first) == data

    other_path, _, other = shared_dicom(1)  # another image: a second instance
    sent = dcmtk.storescu(orthanc.host, orthanc.dicom_port, other_path, called_aet="ORTHANC")
    assert dcmtk.store_succeeded(sent), dcmtk.output(sent)
    assert orthanc.count_instances() == 2
    [received] = orthanc.find_instances_by_uid(other.SOPInstanceUID)
    metadata = orthanc.metadata_of(received)
    assert (metadata["Origin"], metadata["RemoteAET"]) == ("DicomProtocol", "STORESCU")


def test_the_same_sop_instance_uid_in_another_series_is_a_second_instance(orthanc_factory):
    """Orthanc's identity of an instance is the whole chain (PatientID, Study, Series and SOP
    Instance UIDs), not the SOP Instance UID alone: a resend is deduplicated only when every UID
    and the PatientID are the same as the first time; results carrying another PatientID than
    the original's land in another patient and another study of that StudyInstanceUID."""
    orthanc = orthanc_factory()
    _, data, dataset = shared_dicom()
    first = orthanc.upload(data)
    moved = modified_copy(dataset, SeriesInstanceUID=pydicom.uid.generate_uid())
    answer = orthanc.upload_status(moved)
    assert answer["Status"] == "Success" and answer["ID"] != first
    assert orthanc.count_instances() == 2
    other_patient = modified_copy(dataset, PatientID="SOMEONE-ELSE")  # every UID the same
    answer = orthanc.upload_status(other_patient)
    assert answer["Status"] == "Success" and answer["ParentStudy"] != orthanc.study_of(first)
    assert orthanc.count_instances() == 3
    assert len(orthanc.find_instances_by_uid(dataset.SOPInstanceUID)) == 3
    assert len(orthanc.find_studies_by_uid(dataset.StudyInstanceUID)) == 2


def test_orthanc_sends_to_a_pynetdicom_storage_scp(orthanc_factory, storage_scp):
    """The route PACS -> our listener at the protocol level: Orthanc's C-STORE SCU (the
    DicomModalities entry, as deploy/orthanc/ configures it) reaches a pynetdicom SCP."""
    orthanc = orthanc_factory({"triage": ["TRIAGE", "127.0.0.1", storage_scp.port],
                               "nobody": ["NOBODY", "127.0.0.1", free_port()]})
    _, data, dataset = shared_dicom()
    instance = orthanc.upload(data)

    assert orthanc.echo("triage")
    orthanc.send_to_modality("triage", [instance], timeout=30)
    assert storage_scp.arrived.wait(30)
    [(calling_aet, received)] = storage_scp.received
    assert calling_aet == "ORTHANC"
    assert received.SOPInstanceUID == dataset.SOPInstanceUID
    assert received.StudyInstanceUID == dataset.StudyInstanceUID
    assert received.SOPClassUID == dataset.SOPClassUID
    assert received.Modality == "CR"
    assert received.pixel_array.shape == (dataset.Rows, dataset.Columns)

    assert not orthanc.echo("nobody")  # nobody listens there: Orthanc says so, it does not hang
    with pytest.raises(ProcessError, match="nobody/store"):
        orthanc.send_to_modality("nobody", [instance], timeout=10)


DEPLOY_ORTHANC = REPO / "deploy" / "orthanc"
ROUTING_KEYS = ("DicomModalities", "LuaScripts", "OverwriteInstances", "DicomAlwaysAllowStore",
                "DicomCheckCalledAet", "ExecuteLuaEnabled")


def deploy_routing_configuration(scp_port: int) -> dict:
    """deploy/orthanc/orthanc.json's routing part (its Lua script, its "triage" modality, here
    at the test's SCP instead of the dicom-listener container), over the test's configuration."""
    deployed = json.loads((DEPLOY_ORTHANC / "orthanc.json").read_text())
    configuration = {key: deployed[key] for key in ROUTING_KEYS}
    assert configuration["LuaScripts"] == ["/etc/orthanc/route-to-triage.lua"]  # the compose mount
    configuration["LuaScripts"] = [str(DEPLOY_ORTHANC / "route-to-triage.lua")]
    triage = configuration["DicomModalities"]["triage"]
    assert (triage["AET"], triage["Host"], triage["Port"]) == ("TRIAGE", "dicom-listener", 11112)
    configuration["DicomModalities"] = {"triage": {**triage, "Host": "127.0.0.1", "Port": scp_port}}
    configuration["ConcurrentJobs"] = 1  # one job at a time, in order: the last one marks the end
    return configuration


def wait_for_received(scp: StorageSCP, count: int, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while len(scp.received) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return scp.received


def test_the_deployed_routing_sends_radiographs_to_triage_and_not_its_results(orthanc_factory,
                                                                              storage_scp):
    """deploy/orthanc/ (the compose ``pacs`` profile) run by a real Orthanc: a CR or DX stored in
    it goes to the triage AE; the results coming back from AE TRIAGE (even one labelled CR) and
    other modalities are stored and not routed. A copy of an image it already holds is not
    stored again but *is* routed again: Orthanc 1.10 calls OnStoredInstance for it too, so the
    listener sees the resend and must take a known SOP Instance UID as a duplicate."""
    orthanc = orthanc_factory(**deploy_routing_configuration(storage_scp.port))
    path, data, dataset = shared_dicom()
    orthanc.upload(data)
    [(calling_aet, routed)] = wait_for_received(storage_scp, 1)
    assert calling_aet == "ORTHANC" and routed.SOPInstanceUID == dataset.SOPInstanceUID

    assert orthanc.upload_status(data)["Status"] == "AlreadyStored"
    result = modified_copy(dataset, SOPInstanceUID=pydicom.uid.generate_uid(),
                           SeriesInstanceUID=pydicom.uid.generate_uid(), SeriesDescription="result")
    result_dataset = pydicom.dcmread(io.BytesIO(result))
    result_dataset.file_meta.MediaStorageSOPInstanceUID = result_dataset.SOPInstanceUID
    assert c_store(orthanc.host, orthanc.dicom_port, "ORTHANC", result_dataset,
                   calling_aet="TRIAGE") == 0x0000
    orthanc.upload(modified_copy(dataset, SOPInstanceUID=pydicom.uid.generate_uid(), Modality="OT"))
    assert orthanc.count_instances() == 3

    _, other_data, other = shared_dicom(1)  # the last job: once it is there, all have run
    orthanc.upload(modified_copy(pydicom.dcmread(io.BytesIO(other_data)), Modality="DX"))
    wait_for_received(storage_scp, 3)
    time.sleep(1)  # nothing else comes
    routed = [ds.SOPInstanceUID for _, ds in storage_scp.received]
    assert routed == [dataset.SOPInstanceUID, dataset.SOPInstanceUID, other.SOPInstanceUID]
    assert {aet for aet, _ in storage_scp.received} == {"ORTHANC"}
    assert orthanc.count_instances() == 4
    # Lua's sends join one SequenceOfOperations job, which stays open (Running) for a while.
    jobs = [orthanc.get_json(f"/jobs/{job}") for job in orthanc.get_json("/jobs")]
    assert jobs and all(job["State"] in ("Running", "Success") and job["ErrorCode"] == 0
                        for job in jobs), jobs
