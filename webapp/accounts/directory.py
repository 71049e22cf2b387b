"""What a directory (LDAP / Active Directory, or an OpenID provider) says about a user, applied
to our own records at every directory sign-in: the role from the role groups, the teams from the
team groups. The directory is the source of truth for its users: a user taken out of a group
loses the role or the team at the next sign-in, and one in neither role group is refused.

Shared by the LDAP backend (webapp.accounts.ldap_backend) and the OpenID Connect backend; each
works out ``is_admin``/``is_clinician``/``team_names`` from its own protocol (group DNs, claims).
"""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction

from webapp.accounts.models import Role, Team

logger = logging.getLogger(__name__)

# How a sign-in was made, by the dotted path of the authentication backend that let the user in
# (Django stores it in ``user.backend`` and in the session). Recorded in the LOGIN audit row.
SIGN_IN_METHODS: dict[str, str] = {
    "django.contrib.auth.backends.ModelBackend": "password",
    "webapp.accounts.ldap_backend.DirectoryLDAPBackend": "ldap",
    "webapp.accounts.oidc_backend.DirectoryOIDCBackend": "oidc",
}


def sign_in_method(backend_path: str | None) -> str:
    """The method name for a backend path. A backend not in SIGN_IN_METHODS is recorded by its
    own dotted path rather than guessed to be "password": the audit log must never claim a way
    in that it cannot vouch for, and the path still says exactly which code let the user in."""
    if not backend_path:
        return "unknown"
    return SIGN_IN_METHODS.get(backend_path, backend_path)


def teams_from_groups(group_names: Iterable[str]) -> list[str]:
    """The team names among a user's directory groups: the groups whose name starts with
    ``DIRECTORY_TEAM_PREFIX``, the team being the rest of the name (sorted, without repeats,
    nothing empty)."""
    prefix = settings.DIRECTORY_TEAM_PREFIX
    names = {str(group)[len(prefix):].strip() for group in group_names
             if str(group).startswith(prefix)}
    max_length = Team._meta.get_field("name").max_length
    return sorted(name for name in names if name and len(name) <= max_length)


def sync_directory_user(user, *, is_admin: bool, is_clinician: bool, team_names: Iterable[str],
                        source: str) -> bool:
    """Make the user's role and teams what the directory says, in one transaction. Returns False,
    changing nothing, when the user is in neither role group: the caller refuses the sign-in.
    Admin wins over clinician. ``source`` ("ldap", "oidc") only goes to the log."""
    if not (is_admin or is_clinician):
        logger.info("directory sign-in refused: user id %s is in no role group (%s)",
                    user.pk, source)
        return False
    names = sorted(set(team_names))
    with transaction.atomic():
        user.role = Role.ADMIN if is_admin else Role.CLINICIAN
        # The Django admin is for administrators: one demoted in the directory loses it too
        # (User.save only ever turns it on).
        user.is_staff = is_admin or user.is_superuser
        user.save()
        teams = [Team.objects.get_or_create(name=name)[0] for name in names]
        user.teams.set(teams)
    logger.info("directory sign-in (%s): user id %s is %s in %d team(s)",
                source, user.pk, user.role, len(names))
    return True
