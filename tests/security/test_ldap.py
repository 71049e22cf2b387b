"""Sign-in with the hospital's directory (django-auth-ldap), against a real OpenLDAP: Debian's
slapd, started for this module on a free loopback port with a generated directory
(tests/support/slapd.py). Through the real log-in page: groups give the role and the teams, a user
taken out of a group is refused at the next sign-in, one in no role group is refused, a directory
that is down gives a clear message while local accounts still sign in, and the audit log says
how each sign-in was made."""

import socket
import time

import pytest
from django.test import Client
from django.urls import reverse

from tests.support import slapd
from tests.support.processes import free_port
from webapp.accounts import directory
from webapp.accounts.models import Role, Team, User
from webapp.audit.models import Action, AuditEvent
from webapp.settings._ldap import directory_ldap_settings

pytestmark = pytest.mark.django_db

LDAP_BACKEND = "webapp.accounts.ldap_backend.DirectoryLDAPBackend"
DOWN_MESSAGE = "The directory could not be reached"
WRONG_MESSAGE = "Your user name and password did not match"

PEOPLE = [
    slapd.Person("alice", "alice-pw-1", [slapd.CLINICIANS, slapd.EMERGENCY]),
    slapd.Person("bob", "bob-pw-1", [slapd.ADMINS]),
    slapd.Person("carol", "carol-pw-1", [slapd.CLINICIANS]),  # taken out of the group below
    slapd.Person("dave", "dave-pw-1", [slapd.EMERGENCY]),  # a team, but no role group
    slapd.Person("frank", "frank-pw-1", [slapd.ADMINS, slapd.CLINICIANS, slapd.EMERGENCY]),
    slapd.Person("owner", "directory-pw-1", [slapd.ADMINS]),  # a local account's name
]


@pytest.fixture(scope="module")
def server():
    running = slapd.Slapd(PEOPLE, [slapd.CLINICIANS, slapd.ADMINS, slapd.EMERGENCY])
    yield running
    running.stop()


def configure(settings, uri, **overrides):
    """The site's LDAP settings for ``uri``, built as settings/_ldap.py builds them from the
    environment, with the LDAP backend after the local one."""
    options = dict(server_uri=uri, user_search_base=slapd.PEOPLE, bind_dn=slapd.SERVICE_DN,
                   bind_password=slapd.SERVICE_PASSWORD, group_search_base=slapd.GROUPS,
                   clinician_group=slapd.CLINICIANS, admin_group=slapd.ADMINS, timeout_s=2)
    for name, value in directory_ldap_settings(**{**options, **overrides}).items():
        setattr(settings, name, value)
    if LDAP_BACKEND not in settings.AUTHENTICATION_BACKENDS:
        settings.AUTHENTICATION_BACKENDS = [*settings.AUTHENTICATION_BACKENDS, LDAP_BACKEND]


@pytest.fixture
def ldap_on(settings, server):
    configure(settings, server.uri)
    return server


def sign_in(username, password, address="10.20.30.40"):
    client = Client(REMOTE_ADDR=address)
    response = client.post(reverse("login"), {"username": username, "password": password})
    return client, response


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def login_method(user) -> str:
    return AuditEvent.objects.filter(user=user, action=Action.LOGIN).latest("id").detail["method"]


def test_a_clinician_signs_in_with_the_role_and_team_of_their_groups(ldap_on):
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 302 and signed_in(client)
    alice = User.objects.get(username="alice")
    assert alice.role == Role.CLINICIAN and not alice.is_staff
    assert [team.name for team in alice.teams.all()] == ["Emergency"]
    assert (alice.first_name, alice.email) == ("Test", "alice@example.org")  # from the directory
    assert not alice.has_usable_password()  # no local password: the directory decides
    assert login_method(alice) == "ldap"
    assert client.get(reverse("cases:list")).status_code == 200  # the session works


def test_an_admin_group_member_is_an_admin(ldap_on):
    client, response = sign_in("bob", "bob-pw-1")
    assert response.status_code == 302 and signed_in(client)
    bob = User.objects.get(username="bob")
    assert bob.role == Role.ADMIN and bob.is_staff
    assert not bob.teams.exists()


def test_a_wrong_directory_password_is_refused(ldap_on):
    client, response = sign_in("alice", "not-her-password")
    assert response.status_code == 200 and not signed_in(client)
    assert WRONG_MESSAGE in response.content.decode()
    assert AuditEvent.objects.filter(action=Action.LOGIN_FAILED, detail__username="alice").exists()


def test_a_user_taken_out_of_the_group_is_refused_at_next_sign_in(ldap_on):
    client, response = sign_in("carol", "carol-pw-1")
    assert response.status_code == 302 and signed_in(client)

    ldap_on.remove_member(slapd.CLINICIANS, PEOPLE[2].dn)  # on the live server
    client, response = sign_in("carol", "carol-pw-1")
    assert response.status_code == 200 and not signed_in(client)
    assert WRONG_MESSAGE in response.content.decode()
    assert AuditEvent.objects.filter(action=Action.LOGIN_FAILED, detail__username="carol").exists()


def test_role_and_teams_follow_the_directory_at_every_sign_in(ldap_on):
    client, _ = sign_in("frank", "frank-pw-1")
    frank = User.objects.get(username="frank")
    assert frank.role == Role.ADMIN and frank.is_staff  # admin wins over clinician
    assert [team.name for team in frank.teams.all()] == ["Emergency"]

    ldap_on.remove_member(slapd.ADMINS, PEOPLE[4].dn)
    ldap_on.remove_member(slapd.EMERGENCY, PEOPLE[4].dn)
    client, response = sign_in("frank", "frank-pw-1")
    assert response.status_code == 302 and signed_in(client)
    frank.refresh_from_db()
    assert frank.role == Role.CLINICIAN and not frank.is_staff  # no Django admin any more
    assert not frank.teams.exists()
    assert Team.objects.filter(name="Emergency").exists()  # the team stays, for its others


def test_a_user_in_no_role_group_is_refused_and_no_account_is_made(ldap_on):
    client, response = sign_in("dave", "dave-pw-1")
    assert response.status_code == 200 and not signed_in(client)
    assert WRONG_MESSAGE in response.content.decode()
    assert not User.objects.filter(username="dave").exists()


def test_a_local_account_is_not_taken_over_by_a_directory_entry_of_its_name(ldap_on, owner):
    client, response = sign_in("owner", "directory-pw-1")  # the directory's password
    assert response.status_code == 200 and not signed_in(client)
    owner.refresh_from_db()
    assert owner.role == Role.CLINICIAN and owner.has_usable_password()  # untouched

    client, response = sign_in("owner", "correct-horse-battery-9")  # its own password
    assert response.status_code == 302 and signed_in(client)
    assert login_method(owner) == "password"


def test_a_user_deactivated_here_is_refused_and_their_session_ends(ldap_on):
    open_session, _ = sign_in("alice", "alice-pw-1")
    User.objects.filter(username="alice").update(is_active=False)
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 200 and not signed_in(client)
    response = open_session.get(reverse("cases:list"))
    assert response.status_code == 302 and response.url.startswith(reverse("login"))


def test_the_next_directory_server_is_tried_when_one_is_down(settings, server):
    configure(settings, f"ldap://127.0.0.1:{free_port()}/ {server.uri}")
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 302 and signed_in(client)


def test_a_directory_that_is_down_says_so_and_local_accounts_still_sign_in(settings, owner):
    configure(settings, f"ldap://127.0.0.1:{free_port()}/")  # nothing listens there
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 200 and not signed_in(client)
    page = response.content.decode()
    assert DOWN_MESSAGE in page and WRONG_MESSAGE not in page

    client, response = sign_in("owner", "correct-horse-battery-9")
    assert response.status_code == 302 and signed_in(client)
    assert login_method(owner) == "password"


def test_a_directory_that_does_not_answer_fails_within_the_timeout(settings):
    # A port that accepts connections but never answers: the LDAP timeout, not the browser's.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        configure(settings, f"ldap://127.0.0.1:{silent.getsockname()[1]}/", timeout_s=1)
        started = time.monotonic()
        client, response = sign_in("alice", "alice-pw-1")
        elapsed = time.monotonic() - started
    assert DOWN_MESSAGE in response.content.decode() and not signed_in(client)
    assert elapsed < 8, f"the sign-in waited {elapsed:.1f} s on a silent directory"


def test_the_directory_back_up_lets_its_users_in_again(settings, server):
    server.stop_server()
    try:
        configure(settings, server.uri)
        _, response = sign_in("alice", "alice-pw-1")
        assert DOWN_MESSAGE in response.content.decode()
    finally:
        server.start()
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 302 and signed_in(client)


def test_sign_ins_during_an_outage_do_not_lock_directory_users_out(settings, server):
    """Retries while the directory is down are not wrong passwords: more of them than the
    failure limit, and the user still gets in once the directory is back."""
    server.stop_server()
    try:
        configure(settings, server.uri)
        for _ in range(settings.AXES_FAILURE_LIMIT + 1):
            _, response = sign_in("alice", "alice-pw-1")
            assert DOWN_MESSAGE in response.content.decode()
    finally:
        server.start()
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 302 and signed_in(client)


def test_an_outage_still_counts_guesses_at_a_local_accounts_password(settings, owner):
    configure(settings, f"ldap://127.0.0.1:{free_port()}/")  # nothing listens there
    for _ in range(settings.AXES_FAILURE_LIMIT):
        sign_in("owner", "a-wrong-guess")
    client, response = sign_in("owner", "correct-horse-battery-9")
    assert not signed_in(client) and "locked" in response.content.decode()


def test_start_tls_with_the_hospitals_certificate_authority(settings, server):
    configure(settings, server.uri, start_tls=True, ca_file=str(server.ca_file))
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 302 and signed_in(client)


def test_start_tls_refuses_a_certificate_nobody_trusts(settings, server):
    configure(settings, server.uri, start_tls=True)  # the system's authorities only
    client, response = sign_in("alice", "alice-pw-1")
    assert response.status_code == 200 and not signed_in(client)
    assert DOWN_MESSAGE in response.content.decode()


def test_teams_come_from_prefixed_group_names_only(settings):
    settings.DIRECTORY_TEAM_PREFIX = "triage-team-"
    assert directory.teams_from_groups(
        ["triage-team-Emergency", "clinicians", "triage-team-", "triage-team-ICU",
         "triage-team-ICU", "x-triage-team-Nope"]) == ["Emergency", "ICU"]


def test_sign_in_methods_by_backend():
    assert directory.sign_in_method(LDAP_BACKEND) == "ldap"
    assert directory.sign_in_method("django.contrib.auth.backends.ModelBackend") == "password"
    # A backend nobody named is recorded as itself, never passed off as a password sign-in.
    assert directory.sign_in_method("some.other.Backend") == "some.other.Backend"
