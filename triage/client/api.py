"""The HTTP side: one ``requests`` session per thread, with the token; retries of what a retry
can fix (429 after Retry-After, 5xx, dropped connections); any other unexpected status is a
ClientError with the server's answer."""

from __future__ import annotations

import threading
import time

import requests

RETRY_STATUSES = {429, 500, 502, 503, 504}


class ClientError(RuntimeError):
    pass


class Api:
    def __init__(self, url: str, token: str, timeout: float = 120, retries: int = 8):
        self.base = url.rstrip("/") + "/api/v1/"
        self.token, self.timeout, self.retries = token, timeout, retries
        self._local = threading.local()
        self.requests = 0

    @property
    def session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            session.headers.update({"Authorization": f"Token {self.token}",
                                    "Accept": "application/json"})
        return session

    def call(self, method: str, url: str, ok=(200, 201), **kwargs) -> requests.Response:
        """Retries 429 (after Retry-After), 5xx and connection errors; every POST carries an
        Idempotency-Key, so a retry is safe."""
        url = url if url.startswith("http") else self.base + url
        delay = 0.5
        for attempt in range(self.retries + 1):
            for value in kwargs.get("files", {}).values():
                value[1].seek(0)
            try:
                self.requests += 1
                response = self.session.request(method, url, timeout=self.timeout, **kwargs)
            except requests.ConnectionError:
                if attempt == self.retries:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 10)
                continue
            if response.status_code in RETRY_STATUSES and attempt < self.retries:
                wait = response.headers.get("Retry-After")
                time.sleep(float(wait) if wait and wait.replace(".", "", 1).isdigit() else delay)
                delay = min(delay * 2, 10)
                continue
            if response.status_code not in ok:
                raise ClientError(f"{method} {url}: {response.status_code} {response.text[:500]}")
            return response
        raise AssertionError("unreachable")
