"""A real OpenLDAP server (Debian's slapd) for the directory sign-in tests: a generated
slapd.conf and directory in a temporary folder, listening on a free 127.0.0.1 port, run as the
current user. No pytest here: a server that does not come up raises ProcessError with its log.

The directory (dc=example,dc=org):
  ou=people    cn=triage-service (the service account the site binds as), and users
  ou=groups    groupOfNames: clinicians, admins, triage-team-Emergency
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.processes import ProcessError, free_port, stop_process

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
SCHEMA = Path("/etc/ldap/schema")
MODULES = Path("/usr/lib/ldap")

BASE_DN = "dc=example,dc=org"
PEOPLE = f"ou=people,{BASE_DN}"
GROUPS = f"ou=groups,{BASE_DN}"
ROOT_DN, ROOT_PASSWORD = f"cn=admin,{BASE_DN}", "root-secret"  # slapd's own, for ldapmodify
SERVICE_DN, SERVICE_PASSWORD = f"cn=triage-service,{PEOPLE}", "service-secret"
CLINICIANS = f"cn=clinicians,{GROUPS}"
ADMINS = f"cn=admins,{GROUPS}"
EMERGENCY = f"cn=triage-team-Emergency,{GROUPS}"
PLACEHOLDER = f"cn=placeholder,{BASE_DN}"


def available() -> bool:
    return Path(SLAPD).exists() and Path(SLAPADD).exists() and (MODULES / "back_mdb.so").exists()


@dataclass
class Person:
    uid: str
    password: str
    groups: list[str] = field(default_factory=list)
    given_name: str = "Test"
    surname: str = "Person"

    @property
    def dn(self) -> str:
        return f"uid={self.uid},{PEOPLE}"


def _certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own certificate authority), made by openssl."""
    key, cert = folder / "server.key", folder / "server.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=slapd", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True,
                   timeout=60)
    return cert, key


def _config(folder: Path, data: Path, cert: Path, key: Path) -> str:
    return f"""\
include {SCHEMA}/core.schema
include {SCHEMA}/cosine.schema
include {SCHEMA}/inetorgperson.schema
pidfile {folder}/slapd.pid
argsfile {folder}/slapd.args
# StartTLS on the same port, with a certificate no system trusts: ca_file is its authority.
TLSCertificateFile {cert}
TLSCertificateKeyFile {key}
modulepath {MODULES}
moduleload back_mdb
database mdb
maxsize 16777216
suffix "{BASE_DN}"
rootdn "{ROOT_DN}"
rootpw {ROOT_PASSWORD}
directory {data}
# As a hospital's directory would be: passwords only to bind with, the rest to bound users.
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
"""


def _entries(people: list[Person], groups: list[str]) -> str:
    entries = [
        f"dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups",
        f"dn: {SERVICE_DN}\nobjectClass: person\ncn: triage-service\nsn: service\n"
        f"userPassword: {SERVICE_PASSWORD}",
    ]
    for person in people:
        entries.append(f"dn: {person.dn}\nobjectClass: inetOrgPerson\nuid: {person.uid}\n"
                       f"cn: {person.given_name} {person.surname}\ngivenName: {person.given_name}\n"
                       f"sn: {person.surname}\nmail: {person.uid}@example.org\n"
                       f"userPassword: {person.password}")
    for group in groups:
        # groupOfNames needs a member: a placeholder (a DN of no entry) lets the tests take
        # the last person out of a group.
        members = [PLACEHOLDER, *(p.dn for p in people if group in p.groups)]
        cn = group.split(",", 1)[0].split("=", 1)[1]
        entries.append(f"dn: {group}\nobjectClass: groupOfNames\ncn: {cn}\n"
                       + "\n".join(f"member: {dn}" for dn in members))
    return "\n\n".join(entries) + "\n"


class Slapd:
    """``slapd -d 0`` (foreground) on ldap://127.0.0.1:<free port>/ (StartTLS too, its
    certificate's authority in ``ca_file``), with ``people`` in ``groups``; ``stop()`` ends it
    and removes its folder."""

    def __init__(self, people: list[Person], groups: list[str]):
        if not available():
            raise ProcessError("Debian's slapd is not installed (scripts/test installs slapd and "
                               "ldap-utils)")
        self.folder = Path(tempfile.mkdtemp(prefix="slapd-"))
        data = self.folder / "data"
        data.mkdir()
        self.conf = self.folder / "slapd.conf"
        self.ca_file, key = _certificate(self.folder)
        self.conf.write_text(_config(self.folder, data, self.ca_file, key))
        (self.folder / "directory.ldif").write_text(_entries(people, groups))
        self.log_path = self.folder / "slapd.log"
        added = subprocess.run([SLAPADD, "-f", str(self.conf),
                                "-l", str(self.folder / "directory.ldif")],
                               capture_output=True, timeout=60)
        if added.returncode != 0:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise ProcessError(f"slapadd exited with {added.returncode}: "
                               f"{added.stderr.decode(errors='replace').strip()[-2000:]}")
        self.port = free_port()
        self.uri = f"ldap://127.0.0.1:{self.port}/"
        self.process: subprocess.Popen | None = None
        try:
            self.start()
        except ProcessError:
            self.stop()
            raise

    def start(self, timeout: float = 20) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [SLAPD, "-f", str(self.conf), "-h", self.uri, "-d", "0"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ProcessError(f"slapd exited with {self.process.returncode}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-4000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop_server()
        raise ProcessError(f"slapd did not listen on {self.uri}:\n"
                           f"{self.log_path.read_text(errors='replace')[-4000:]}")

    def stop_server(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=10)
            self.process = None

    def stop(self) -> None:
        self.stop_server()
        shutil.rmtree(self.folder, ignore_errors=True)

    def modify(self, ldif: str) -> None:
        """``ldapmodify`` on the running server, as its root DN (as an IT person would)."""
        done = subprocess.run(
            ["ldapmodify", "-x", "-H", self.uri, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(), capture_output=True, timeout=30)
        if done.returncode != 0:
            raise ProcessError(f"ldapmodify exited with {done.returncode}: "
                               f"{done.stderr.decode(errors='replace').strip()}")

    def remove_member(self, group_dn: str, member_dn: str) -> None:
        self.modify(f"dn: {group_dn}\nchangetype: modify\ndelete: member\nmember: {member_dn}\n")
