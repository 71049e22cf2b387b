"""A real Orthanc (Debian's ``orthanc`` package, ``/usr/sbin/Orthanc``) for the PACS tests: the
PACS that sends chest X-rays to the DICOM listener and receives the results back. No pytest here
(tests/support/pacs_fixtures.py makes the fixtures); a server that does not come up raises
ProcessError with the tail of its log.

Each instance writes its own configuration file into its folder and runs on loopback with free
ports: its own storage (index and files), no plugins (only the configuration file given on the
command line is read, so Debian's /etc/orthanc, which points at plugin folders, plays no part),
no Lua, no authentication on the REST API (``RemoteAccessAllowed`` false: only loopback clients
are served), C-STORE accepted from any AE (the results come from an AE that need not be in
``DicomModalities``). Stopping and starting it again with the same folder keeps what it stored.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

from tests.support.processes import ProcessError, free_port, stop_process, wait_until_serving

ORTHANC_BINARY = "Orthanc"  # /usr/sbin/Orthanc in Debian's package
START_TIMEOUT = 60


def orthanc_binary() -> str | None:
    """The path of Orthanc's binary (PATH, then /usr/sbin, which a user's PATH may lack)."""
    return (shutil.which(ORTHANC_BINARY)
            or shutil.which(ORTHANC_BINARY, path="/usr/sbin:/usr/local/sbin"))


class Orthanc:
    """One Orthanc server in ``workdir``: ``configuration.json``, ``storage/``, ``orthanc.log``.

    ``modalities``: Orthanc's ``DicomModalities``, e.g. ``{"triage": ["TRIAGE", "127.0.0.1",
    11112]}``. ``extra_configuration`` is merged over the generated configuration."""

    def __init__(self, workdir: Path, *, modalities: dict | None = None, aet: str = "ORTHANC",
                 extra_configuration: dict | None = None):
        self.workdir = Path(workdir)
        self.aet = aet
        self.modalities = dict(modalities or {})
        self.extra_configuration = dict(extra_configuration or {})
        self.dicom_port, self.http_port = free_port(), free_port()
        self.host = "127.0.0.1"
        self.storage = self.workdir / "storage"
        self.config_path = self.workdir / "configuration.json"
        self.log_path = self.workdir / "orthanc.log"
        self.process: subprocess.Popen | None = None
        self._session = None

    @staticmethod
    def available() -> bool:
        """Whether Orthanc's binary is installed."""
        return orthanc_binary() is not None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def configuration(self) -> dict:
        configuration = {
            "Name": f"test-{self.aet}",
            "StorageDirectory": str(self.storage),
            "IndexDirectory": str(self.storage),
            "TemporaryDirectory": str(self.workdir / "tmp"),
            "Plugins": [],
            "LuaScripts": [],
            "ExecuteLuaEnabled": False,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,  # the REST API serves loopback clients only
            "AuthenticationEnabled": False,
            "HttpDescribeErrors": True,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "MetricsEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,  # the results come from an AE not in DicomModalities
            "DicomCheckModalityHost": False,
            "DicomModalities": self.modalities,
            "DicomModalitiesInDatabase": False,
            "OrthancPeersInDatabase": False,
            "DicomScuTimeout": 10,
            "DicomAssociationCloseDelay": 0,  # a test's sends are not batched into one association
            "OverwriteInstances": False,  # Orthanc's default, stated: a second copy is not stored
            "SaveJobs": False,
            "StableAge": 2,
            "DeidentifyLogs": False,
            "ConcurrentJobs": 2,
            "HttpThreadsCount": 10,
            "DicomThreadsCount": 4,
        }
        configuration.update(self.extra_configuration)
        return configuration

    def start(self, timeout: float = START_TIMEOUT) -> "Orthanc":
        """Write the configuration and start the server; returns once ``/system`` answers."""
        binary = orthanc_binary()
        if binary is None:
            raise ProcessError("Orthanc is not installed (Debian's orthanc package, "
                               "/usr/sbin/Orthanc)")
        if self.process is not None and self.process.poll() is None:
            return self
        self.storage.mkdir(parents=True, exist_ok=True)
        (self.workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.configuration(), indent=2))
        with open(self.log_path, "ab") as log:
            # Orthanc logs warnings and errors to stderr unless --verbose: quiet, into the file.
            self.process = subprocess.Popen([binary, str(self.config_path)], cwd=self.workdir,
                                            stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            # Any HTTP answer first (the process exiting fails at once), then a 200 from /system.
            wait_until_serving(f"{self.url}/system", self.process, self.log_path, timeout,
                               "Orthanc")
            self._wait_for_system(timeout)
        except ProcessError:
            self.stop()
            raise
        return self

    def _wait_for_system(self, timeout: float) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if self.session.get(f"{self.url}/system", timeout=5).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise ProcessError(f"Orthanc's /system did not answer:\n{self.log_text()[-4000:]}")

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM (Orthanc closes its index cleanly), SIGKILL after ``timeout``."""
        if self.process is not None:
            stop_process(self.process, timeout)
        if self._session is not None:
            self._session.close()
            self._session = None

    def restart(self) -> "Orthanc":
        """Stop and start again, same ports and same storage."""
        self.stop()
        return self.start()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # --- REST API -------------------------------------------------------------------------------

    @property
    def session(self):
        import requests

        if self._session is None:
            self._session = requests.Session()
        return self._session

    def _request(self, method: str, path: str, *, timeout: float = 30, **kwargs):
        response = self.session.request(method, f"{self.url}{path}", timeout=timeout, **kwargs)
        if not response.ok:
            raise ProcessError(f"Orthanc {method} {path}: HTTP {response.status_code}: "
                               f"{response.text[:2000]}")
        return response

    def get_json(self, path: str, **kwargs):
        return self._request("GET", path, **kwargs).json()

    def post_json(self, path: str, body=None, **kwargs):
        return self._request("POST", path, json=body, **kwargs).json()

    def upload(self, dicom_bytes: bytes) -> str:
        """POST /instances; the Orthanc id of the instance (also when it was already stored)."""
        return self.upload_status(dicom_bytes)["ID"]

    def upload_status(self, dicom_bytes: bytes) -> dict:
        """POST /instances; Orthanc's answer (``ID``, ``Status``: Success or AlreadyStored...)."""
        return self._request("POST", "/instances", data=dicom_bytes,
                             headers={"Content-Type": "application/dicom"}).json()

    def send_to_modality(self, modality: str, resource_ids, timeout: float = 60) -> dict:
        """C-STORE of these resources (instances, series, studies...) to ``modality``, one
        synchronous job; Orthanc's answer. Raises ProcessError with the body on a failure."""
        if isinstance(resource_ids, str):
            resource_ids = [resource_ids]
        body = {"Resources": list(resource_ids), "Synchronous": True, "Timeout": int(timeout)}
        return self.post_json(f"/modalities/{modality}/store", body, timeout=timeout + 30)

    def echo(self, modality: str, timeout: float = 10) -> bool:
        """C-ECHO from Orthanc to ``modality``: True on success, False when it failed."""
        response = self.session.post(f"{self.url}/modalities/{modality}/echo",
                                     json={"Timeout": int(timeout)}, timeout=timeout + 30)
        return response.ok

    def study_of(self, instance_id: str) -> str:
        """The Orthanc id of the instance's study."""
        return self.get_json(f"/instances/{instance_id}/study")["ID"]

    def instances_of_study(self, study_id: str) -> list[dict]:
        """Every instance of the study: its Orthanc ``ID`` and main tags (SOPClassUID,
        SOPInstanceUID, SeriesInstanceUID, StudyInstanceUID, Modality, SeriesDescription...)."""
        instances = []
        for instance in self.get_json(f"/studies/{study_id}/instances"):
            tags = self.get_json(f"/instances/{instance['ID']}/simplified-tags")
            instances.append({"ID": instance["ID"], **tags})
        return instances

    def tags_of(self, instance_id: str) -> dict:
        return self.get_json(f"/instances/{instance_id}/simplified-tags")

    def metadata_of(self, instance_id: str) -> dict:
        """Orthanc's metadata of the instance: RemoteAET, CalledAET, Origin, TransferSyntax..."""
        return self.get_json(f"/instances/{instance_id}/metadata?expand")

    def file_of(self, instance_id: str) -> bytes:
        """The stored DICOM file, as received."""
        return self._request("GET", f"/instances/{instance_id}/file").content

    def find_studies_by_uid(self, study_instance_uid: str) -> list[str]:
        """The Orthanc ids of the studies with this StudyInstanceUID (none or one)."""
        return self.post_json("/tools/find", {"Level": "Study",
                                              "Query": {"StudyInstanceUID": study_instance_uid}})

    def find_instances_by_uid(self, sop_instance_uid: str) -> list[str]:
        return self.post_json("/tools/find", {"Level": "Instance",
                                              "Query": {"SOPInstanceUID": sop_instance_uid}})

    def count_instances(self) -> int:
        return int(self.get_json("/statistics")["CountInstances"])

    def all_instances(self) -> list[str]:
        return self.get_json("/instances")
