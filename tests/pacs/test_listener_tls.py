"""The listener over TLS (DICOM_TLS_CERT / DICOM_TLS_KEY), and mutual TLS with DICOM_TLS_CA: a
real listener process, certificates made by openssl for the test, pynetdicom as the node."""

from __future__ import annotations

import ssl
import subprocess

import pytest
from django.core.management import call_command
from tests.support.connections import process_environment
from tests.support.data import ARTIFACTS
from tests.support.listener import DicomListener, echo

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def self_signed(folder, name):
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def echo_over_tls(port, server_cert, client=None):
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(server_cert))
    context.check_hostname = False  # the listener is reached by address, its name is "listener"
    if client:
        context.load_cert_chain(*map(str, client))
    return echo(port, "SECURE", tls_args=(context, None))


def test_mutual_tls_admits_only_nodes_with_a_trusted_certificate(settings, tmp_path, owner):
    server = self_signed(tmp_path, "listener")
    node_cert = self_signed(tmp_path, "node")
    stranger_cert = self_signed(tmp_path, "stranger")
    call_command("add_dicom_node", "--ae-title", "SECURE", "--host", "127.0.0.1", "--port", "104",
                 "--owner", owner.username)
    env = process_environment(settings, DICOM_TLS_CERT=str(server[0]), DICOM_TLS_KEY=str(server[1]),
                              DICOM_TLS_CA=str(node_cert[0]))
    listener = DicomListener(env, ARTIFACTS / "dicom-listener-tls.log").start()
    try:
        assert echo_over_tls(listener.port, server[0], client=node_cert) == 0x0000
        assert echo_over_tls(listener.port, server[0], client=stranger_cert) is None
        assert echo_over_tls(listener.port, server[0]) is None  # no client certificate
        assert echo(listener.port, "SECURE") is None  # no TLS at all
        assert listener.alive()
        assert echo_over_tls(listener.port, server[0], client=node_cert) == 0x0000
    finally:
        listener.stop()
