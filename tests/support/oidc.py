"""A real OpenID provider for the tests (the npm package oidc-provider, OpenID Certified, run by
Node from tests/support/oidc_provider/server.mjs on a free loopback port), and a browser's walk
through the authorization code flow against it: our site -> the provider's sign-in form -> our
callback. No pytest here: a provider that does not come up raises ProcessError."""

from __future__ import annotations

import json
import re
import selectors
import shutil
import subprocess
import time
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import requests

from tests.support.data import REPO
from tests.support.processes import ProcessError, stop_process

PROVIDER_DIR = REPO / "tests" / "support" / "oidc_provider"
PROVIDER_INSTALLED = PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json"
CLIENT_ID, CLIENT_SECRET = "pneumothorax-triage", "a-test-client-secret"


class OpenIDProvider:
    """``node server.mjs`` with one confidential client whose redirect URIs are
    ``redirect_uris``. Its accounts are a JSON file read again at every sign-in:
    ``set_accounts`` changes them."""

    def __init__(self, workdir: Path, redirect_uris: list[str]):
        self.workdir, self.redirect_uris = workdir, redirect_uris
        self.accounts_file = workdir / "accounts.json"
        self.process, self.issuer, self.metadata = None, None, {}

    def start(self, timeout: float = 30) -> "OpenIDProvider":
        node = shutil.which("node")
        if node is None or not PROVIDER_INSTALLED.exists():
            raise ProcessError("Node or oidc-provider is missing: scripts/test installs it, or run "
                               f"`npm ci --prefix {PROVIDER_DIR.relative_to(REPO)}`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.set_accounts({})
        config = self.workdir / "provider.json"
        config.write_text(json.dumps({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                                      "redirect_uris": self.redirect_uris,
                                      "accounts_file": str(self.accounts_file)}))
        log = open(self.workdir / "provider.log", "ab")
        # stdin is a pipe that nobody writes: when this test process ends, however it ends, the
        # pipe closes and the provider exits by itself.
        self.process = subprocess.Popen([node, "server.mjs", str(config)], cwd=PROVIDER_DIR,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log)
        log.close()
        self.issuer = json.loads(self._first_line(timeout))["issuer"]
        self.metadata = requests.get(f"{self.issuer}/.well-known/openid-configuration",
                                     timeout=10).json()
        return self

    def _first_line(self, timeout: float) -> str:
        selector = selectors.DefaultSelector()
        selector.register(self.process.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if selector.select(timeout=0.2):
                line = self.process.stdout.readline().decode()
                if line.strip():
                    return line
            if self.process.poll() is not None:
                break
        self.stop()
        raise ProcessError("the OpenID provider did not start:\n"
                           + (self.workdir / "provider.log").read_text(errors="replace")[-3000:])

    def set_accounts(self, accounts: dict) -> None:
        """``{sub: {"preferred_username", "email", "groups": [...]}}``, as the directory is now."""
        self.accounts_file.write_text(json.dumps(accounts))

    def settings(self) -> dict:
        """Our site's OIDC settings for this provider, endpoints from its discovery document."""
        meta = self.metadata
        return {"OIDC_ENABLED": True, "OIDC_RP_CLIENT_ID": CLIENT_ID,
                "OIDC_RP_CLIENT_SECRET": CLIENT_SECRET,
                "OIDC_OP_AUTHORIZATION_ENDPOINT": meta["authorization_endpoint"],
                "OIDC_OP_TOKEN_ENDPOINT": meta["token_endpoint"],
                "OIDC_OP_USER_ENDPOINT": meta["userinfo_endpoint"],
                "OIDC_OP_JWKS_ENDPOINT": meta["jwks_uri"],
                "OIDC_RP_SCOPES": "openid email profile groups"}

    def stop(self) -> None:
        if self.process is not None:
            self.process.stdin.close()
            stop_process(self.process, timeout=10)
            self.process.stdout.close()


_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')
SIGN_IN_LINK = re.compile(r'id="oidc-sign-in" href="([^"]+)"')


def sign_in_link(login_page: str) -> str:
    """The "Sign in with ..." link's address on our login page (AssertionError: no link)."""
    link = SIGN_IN_LINK.search(login_page)
    assert link, "the login page has no OpenID Connect sign-in link"
    return unescape(link.group(1))


def authorize(browser: requests.Session, authorization_url: str, login: str,
              callback: str) -> str:
    """At the provider, as a browser: its sign-in form (its development interaction, submitted
    with ``login`` as the account) and its redirects, up to the one back to ``callback``.
    Returns that URL (code and state), not yet visited: the caller visits it, or tampers with
    it first."""
    form = browser.get(authorization_url, timeout=10)
    assert "/interaction/" in form.url, f"not the provider's sign-in form: {form.url}"
    action = urljoin(form.url, unescape(_FORM_ACTION.search(form.text).group(1)))
    answer = browser.post(action, data={"prompt": "login", "login": login, "password": "any"},
                          allow_redirects=False, timeout=10)
    for _ in range(10):  # the provider's own redirects (resume, then the authorization answer)
        location = urljoin(answer.url, answer.headers["Location"])
        if location.startswith(callback):
            return location
        answer = browser.get(location, allow_redirects=False, timeout=10)
    raise AssertionError(f"the provider never sent the browser back: {answer.status_code} {answer.url}")
