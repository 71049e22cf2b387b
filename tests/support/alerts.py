"""Real receivers of alerts for the tests (tests/web/test_alerts.py, tests/faults/
test_alert_worker_kill.py): an HTTP server on loopback that verifies each webhook's signature as
a hospital's receiver would, an SMTP server (aiosmtpd) that keeps what it is sent, and a light
Celery worker that consumes one alert queue only (no model). No mocks: the product's own code
talks to them over sockets."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.processes import CeleryWorker, ProcessError, free_port

SECRET = "test-webhook-secret-do-not-use"


@dataclass
class Received:
    headers: dict
    body: bytes
    signature_valid: bool

    @property
    def payload(self) -> dict:
        return json.loads(self.body)

    @property
    def delivery_id(self) -> str:
        return self.headers.get("X-Triage-Delivery", "")


@dataclass
class WebhookReceiver:
    """A receiver on 127.0.0.1:``port``, started and stopped at will on the same port (a receiver
    that is down refuses connections). It answers ``status`` (200 by default) and records every
    request with whether its ``X-Triage-Signature`` matches HMAC-SHA256(secret, exact body)."""

    secret: str = SECRET
    port: int = field(default_factory=free_port)
    status: int = 200
    received: list[Received] = field(default_factory=list)
    # Set: each request is recorded, then held unanswered until the event is set (a receiver
    # that has the alert while its sender dies before hearing back).
    hold: threading.Event | None = None
    _server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/triage-alerts"

    def start(self) -> "WebhookReceiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                expected = "sha256=" + hmac.new(receiver.secret.encode(), body,
                                                hashlib.sha256).hexdigest()
                given = self.headers.get("X-Triage-Signature", "")
                receiver.received.append(Received(dict(self.headers.items()), body,
                                                  hmac.compare_digest(expected, given)))
                if receiver.hold is not None:
                    receiver.hold.wait(30)
                try:
                    self.send_response(receiver.status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:  # the sender is gone (killed while we held its request)
                    pass

            def log_message(self, *args):  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def distinct(self, image_id: str | None = None) -> dict[str, Received]:
        """What a de-duplicating receiver keeps: one per X-Triage-Delivery, signed ones only."""
        return {r.delivery_id: r for r in self.received if r.signature_valid
                and (image_id is None or r.payload["image_id"] == image_id)}

    def for_image(self, image_id: str) -> list[Received]:
        return [r for r in self.received if r.payload.get("image_id") == image_id]


class SmtpSink:
    """aiosmtpd on 127.0.0.1, keeping each message (envelope and parsed e-mail)."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                sink.messages.append({"to": list(envelope.rcpt_tos), "raw": envelope.content,
                                      "email": message_from_bytes(envelope.content,
                                                                  policy=policy.default)})
                return "250 Message accepted for delivery"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


class AlertWorker(CeleryWorker):
    """``celery -A webapp.celery_app worker -Q <queue>``: the light worker that sends alerts
    (as dicom-sender does in production), ready once its consumer is (no model to load)."""

    def __init__(self, env: dict, log_path, queue: str):
        super().__init__(env, log_path, app="webapp.celery_app", hostname=f"{queue}@%h",
                         options=("-Q", queue), ready_timeout=120)

    def _wait_until_ready(self):
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            with open(self.log_path, "rb") as handle:
                handle.seek(self._log_start)
                tail = handle.read().decode(errors="replace")
            if self.process.poll() is not None:
                raise ProcessError(f"the alert worker exited with {self.process.returncode}:\n"
                                   f"{tail[-3000:]}")
            if " ready." in tail:
                return
            time.sleep(0.2)
        self.kill_all()
        raise ProcessError(f"the alert worker was not ready in {self.ready_timeout} s:\n"
                           f"{self.log_text()[-3000:]}")
