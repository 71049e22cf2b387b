"""OpenID Connect sign-in against a real OpenID provider (the npm package oidc-provider, started
on loopback by tests/support/oidc.py): the authorization code flow end to end. The browser's part
at the provider is real HTTP (its own sign-in form, submitted); at our site it is Django's test
client, through every middleware and view, and the site's own calls to the provider (token,
keys, userinfo) are real HTTP. One test does it all in chromium against the live server.

The provider's groups decide the role and the teams at every sign-in, as LDAP's do: a clinician,
an administrator, a user in neither group refused (with a message, no account made), a user
taken out of the group refused at the next sign-in. The library's state check holds, a local
account's name is never taken over, and while OIDC is off its pages do not exist."""

import pytest
import requests
from django.test import Client

from tests.support.oidc import OpenIDProvider, authorize, sign_in_link
from webapp.accounts.models import OidcIdentity, Role, User
from webapp.audit.models import Action, AuditEvent

CLINICIANS, ADMINS = "triage-clinicians", "triage-admins"
PROVIDER_NAME = "Test Hospital ID"
CALLBACK = "http://testserver/oidc/callback/"  # the test client's host
ALICE = {"preferred_username": "alice", "email": "alice@hospital.example",
         "given_name": "Alice", "family_name": "Adams",
         "groups": [CLINICIANS, "triage-team-Emergency", "all-staff"]}
BOB = {"preferred_username": "bob", "email": "bob@hospital.example", "groups": [ADMINS]}
CAROL = {"preferred_username": "carol", "email": "carol@hospital.example",
         "groups": ["all-staff", "triage-team-Emergency"]}  # a team, but no role group


@pytest.fixture(scope="module")
def provider(live_server, tmp_path_factory):
    oidc = OpenIDProvider(tmp_path_factory.mktemp("oidc"),
                          [CALLBACK, f"{live_server.url}/oidc/callback/"])
    oidc.start()
    yield oidc
    oidc.stop()


@pytest.fixture
def oidc_on(provider, settings):
    """OpenID Connect on, pointed at the provider, as settings/_oidc.py sets it from the
    environment."""
    for name, value in provider.settings().items():
        setattr(settings, name, value)
    settings.OIDC_PROVIDER_NAME = PROVIDER_NAME
    settings.OIDC_CLINICIAN_GROUP, settings.OIDC_ADMIN_GROUP = CLINICIANS, ADMINS
    settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS,
                                        "webapp.accounts.oidc_backend.DirectoryOIDCBackend"]
    provider.set_accounts({"sub-alice": ALICE, "sub-bob": BOB, "sub-carol": CAROL})


@pytest.fixture
def site(oidc_on, db):
    """OIDC on, and the database in the test's transaction: the test client is in-process."""


def to_provider(browser: Client, login: str, login_page: str = "/login/") -> str:
    """A browser at our login page clicks "Sign in with" and signs in at the provider as
    ``login``; the callback URL the provider sends it back to (not yet visited)."""
    page = browser.get(login_page)
    assert f"Sign in with {PROVIDER_NAME}" in page.content.decode()
    redirect = browser.get(sign_in_link(page.content.decode()))
    assert redirect.status_code == 302
    return authorize(requests.Session(), redirect["Location"], login, CALLBACK)


def browse(login: str, login_page: str = "/login/"):
    """A new browser signs in as ``login``: the page it lands on at our site, and where."""
    browser = Client()
    page = browser.get(to_provider(browser, login, login_page), follow=True)
    return page, page.redirect_chain[-1][0] if page.redirect_chain else None


def test_off_while_no_client_id(client: Client, settings, db):
    settings.OIDC_ENABLED = False

    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404
    assert "Sign in with" not in client.get("/login/").content.decode()


def test_clinician_signs_in_with_role_team_and_audited_method(site):
    page, landed = browse("sub-alice")

    assert page.status_code == 200 and landed == "/cases/"
    alice = User.objects.get(username="alice")
    assert alice.role == Role.CLINICIAN and not alice.is_staff
    assert [team.name for team in alice.teams.all()] == ["Emergency"]
    assert (alice.email, alice.first_name, alice.last_name) == ("alice@hospital.example", "Alice", "Adams")
    assert not alice.has_usable_password()  # no second password to manage
    identity = OidcIdentity.objects.get(user=alice)
    assert identity.subject == "sub-alice" and identity.issuer.startswith("http://127.0.0.1:")
    login = AuditEvent.objects.get(action=Action.LOGIN, user=alice)
    assert login.detail["method"] == "oidc"


def test_administrator_signs_in_as_admin_without_our_second_factor(site):
    page, landed = browse("sub-bob")

    assert landed == "/cases/"  # the provider's second factor counts: no set-up step here
    bob = User.objects.get(username="bob")
    assert bob.role == Role.ADMIN and bob.is_staff and not bob.teams.exists()


def test_guest_named_by_email_and_sent_back_to_the_page_asked_for(site, provider):
    # An Entra ID guest: a UPN that is no valid user name here; the e-mail address is used.
    provider.set_accounts({"sub-dave": {"preferred_username": "dave_example.org#EXT#@hospital",
                                        "email": "dave@example.org", "groups": [CLINICIANS]}})

    page, landed = browse("sub-dave", login_page="/login/?next=/audit/")

    assert page.status_code == 200 and landed == "/audit/"
    assert OidcIdentity.objects.get(subject="sub-dave").user.username == "dave@example.org"


def test_user_in_no_role_group_is_refused_with_a_message_and_no_account(site):
    page, landed = browse("sub-carol")

    assert landed == "/login/"
    assert "is not in a group that may use Pneumothorax Triage" in page.content.decode()
    assert not User.objects.filter(username="carol").exists()
    assert not AuditEvent.objects.filter(action=Action.LOGIN).exists()
    refused = AuditEvent.objects.get(action=Action.LOGIN_FAILED)
    assert refused.detail == {"method": "oidc", "reason": "no_role_group", "username": "carol"}


def test_user_taken_out_of_the_group_is_refused_at_the_next_sign_in(site, provider):
    assert browse("sub-alice")[1] == "/cases/"

    # The directory admin takes Alice out of the clinicians (she keeps her team group).
    provider.set_accounts({"sub-alice": {**ALICE, "groups": ["triage-team-Emergency"]}})
    page, landed = browse("sub-alice")

    assert landed == "/login/" and "is not in a group" in page.content.decode()
    assert AuditEvent.objects.filter(action=Action.LOGIN).count() == 1  # the first sign-in only


def test_claims_are_mapped_again_at_every_sign_in_to_the_same_account(site, provider):
    browse("sub-alice")
    # Promoted to administrator, moved from Emergency to Radiology, and renamed: the same
    # account (matched by sub), with the new role, team and e-mail address.
    provider.set_accounts({"sub-alice": {**ALICE, "groups": [ADMINS, "triage-team-Radiology"],
                                         "preferred_username": "alice.adams",
                                         "email": "alice.adams@hospital.example"}})
    assert browse("sub-alice")[1] == "/cases/"

    assert User.objects.count() == 1
    alice = OidcIdentity.objects.get(subject="sub-alice").user
    assert alice.role == Role.ADMIN and alice.is_staff
    assert [team.name for team in alice.teams.all()] == ["Radiology"]
    assert alice.email == "alice.adams@hospital.example"


def test_local_account_with_the_same_name_is_never_taken_over(site, make_user):
    local = make_user("bob", role="clinician")

    page, landed = browse("sub-bob")  # the provider's "bob" is an administrator

    assert landed == "/login/"
    assert "An account named \u201cbob\u201d already exists here" in page.content.decode()
    local.refresh_from_db()
    assert local.role == Role.CLINICIAN and not OidcIdentity.objects.exists()


def test_tampered_state_is_refused(site):
    browser = Client()
    callback = to_provider(browser, "sub-alice")
    assert "state=" in callback

    forged = browser.get(callback.replace("state=", "state=forged"))

    assert forged.status_code == 400  # the library's check: the state is not this session's
    assert browser.get("/cases/")["Location"].startswith("/login/")
    assert not User.objects.filter(username="alice").exists()


def test_provider_refusing_the_code_is_a_message_not_an_error_page(site, settings):
    settings.OIDC_RP_CLIENT_SECRET = "not-the-registered-secret"  # e.g. an expired Entra secret

    page, landed = browse("sub-alice")  # the provider's token endpoint answers invalid_client

    assert page.status_code == 200 and landed == "/login/"
    assert "could not be reached or refused the sign-in" in page.content.decode()
    assert not User.objects.exists()


def test_callback_without_a_flow_of_this_session_is_refused(site):
    page = Client().get("/oidc/callback/?code=stolen&state=whatever", follow=True)

    assert page.redirect_chain[-1][0] == "/login/" and "did not succeed" in page.content.decode()
    assert not User.objects.exists()


@pytest.mark.browser
@pytest.mark.slow
def test_a_real_browser_signs_in_under_the_content_security_policy(oidc_on, live_server,
                                                                   transactional_db):
    """The whole flow over real HTTP in chromium, against the live server: the link, the
    provider's form and the redirects back. Our policy (form-action 'self') blocks none of it,
    and our pages report no violation."""
    from tests.support.browser import chromium

    site = live_server.url
    with chromium() as browser:
        page = browser.new_page()
        page.add_init_script("window.__violations = []; document.addEventListener("
                             "'securitypolicyviolation', e => window.__violations.push("
                             "`${e.violatedDirective} ${e.blockedURI}`));")
        page.goto(f"{site}/login/")
        assert page.evaluate("window.__violations") == []
        page.click(f"text=Sign in with {PROVIDER_NAME}")
        page.fill("input[name=login]", "sub-alice")
        page.fill("input[name=password]", "any")
        page.click("button[type=submit]")
        page.wait_for_url(f"{site}/cases/", timeout=30_000)
        assert page.evaluate("window.__violations") == []
    assert AuditEvent.objects.get(action=Action.LOGIN).detail["method"] == "oidc"


PROVIDER_ENV = {"OIDC_RP_CLIENT_ID": "triage", "OIDC_RP_CLIENT_SECRET": "s",
                "OIDC_OP_AUTHORIZATION_ENDPOINT": "https://idp.example.org/authorize",
                "OIDC_OP_TOKEN_ENDPOINT": "https://idp.example.org/token",
                "OIDC_OP_USER_ENDPOINT": "https://idp.example.org/userinfo",
                "OIDC_OP_JWKS_ENDPOINT": "https://idp.example.org/keys",
                "OIDC_CLINICIAN_GROUP": "triage-clinicians"}


def test_settings_from_the_environment_turn_it_on_beside_the_local_accounts():
    """base.py with settings/_oidc.py, as a deployment loads them: the backend after the local
    ones (a password sign-in never waits on the provider), the library's app installed."""
    import json
    import os
    import subprocess
    import sys

    from tests.support.data import REPO

    script = ("import django, json; django.setup(); from django.conf import settings as s; "
              "print(json.dumps([s.OIDC_ENABLED, s.AUTHENTICATION_BACKENDS, s.INSTALLED_APPS]))")
    environment = {**os.environ, **PROVIDER_ENV, "DJANGO_SETTINGS_MODULE": "webapp.settings.test"}
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=environment,
                            capture_output=True, text=True, timeout=60)
    enabled, backends, apps = json.loads(result.stdout.strip().splitlines()[-1])

    assert enabled and backends[-1] == "webapp.accounts.oidc_backend.DirectoryOIDCBackend"
    assert len(backends) > 1 and "mozilla_django_oidc" in apps


@pytest.mark.parametrize("name, value", [("OIDC_OP_JWKS_ENDPOINT", ""),
                                         ("OIDC_RP_CLIENT_SECRET", ""),
                                         ("OIDC_CLINICIAN_GROUP", ""),
                                         ("OIDC_RP_SIGN_ALGO", "HS256")])
def test_half_configured_provider_stops_the_site_with_the_name_to_set(monkeypatch, name, value):
    import importlib

    from django.core.exceptions import ImproperlyConfigured

    from webapp.settings import _oidc

    for key, setting in {**PROVIDER_ENV, name: value}.items():
        monkeypatch.setenv(key, setting)
    try:
        with pytest.raises(ImproperlyConfigured, match=name):
            importlib.reload(_oidc)
    finally:
        monkeypatch.undo()
        importlib.reload(_oidc)  # as the environment of this run has it (off)
    assert _oidc.OIDC_ENABLED is False and _oidc.OIDC_AUTHENTICATION_BACKENDS == []


def test_refused_sign_ins_do_not_lock_out_the_next_user_at_the_same_address(site, settings):
    """A refusal is no password guess: the failed-log-in limits (django-axes) must not count it,
    or a few refused users behind the hospital's proxy would lock everyone else out."""
    for _ in range(settings.AXES_FAILURE_LIMIT + 1):  # all from the test client's 127.0.0.1
        assert browse("sub-carol")[1] == "/login/"

    assert browse("sub-alice")[1] == "/cases/"
