"""Sign-in with the hospital's LDAP / Active Directory (django-auth-ldap; settings/_ldap.py).

django-auth-ldap finds the user, checks the password by binding as them and refuses anyone in
neither role group (AUTH_LDAP_REQUIRE_GROUP). This backend adds what is ours: the role and teams
from the groups (webapp.accounts.directory), a local account never taken over by a directory
entry of the same name, and a note on the request when the directory could not be used, so that
the log-in page can say so instead of "wrong password".
"""

import logging

import ldap
from django.db import transaction
from django.dispatch import receiver
from django_auth_ldap.backend import LDAPBackend, ldap_error

from webapp.accounts import directory

logger = logging.getLogger(__name__)

# Set on the request when the directory failed during a sign-in (down, too slow, or the service
# account refused): webapp.accounts.forms shows its own message for it.
DIRECTORY_UNREACHABLE = "directory_unreachable"


def _normal_dn(dn: str) -> str:
    """A DN in one spelling: the directory may return "CN=Admins, DC=x" for "cn=admins,dc=x"."""
    try:
        return ldap.dn.dn2str(ldap.dn.str2dn(dn)).lower()
    except ldap.DECODING_ERROR:
        return dn.strip().lower()


class DirectoryLDAPBackend(LDAPBackend):
    # Our own settings beside django-auth-ldap's, read the same way (AUTH_LDAP_ + name, at each
    # sign-in): the DNs of the role groups.
    default_settings = {"ADMIN_GROUP": "", "CLINICIAN_GROUP": ""}

    def authenticate_ldap_user(self, ldap_user, password):
        # One transaction: an account made by this sign-in is undone if the sign-in is refused.
        with transaction.atomic():
            user = super().authenticate_ldap_user(ldap_user, password)
            if user is None:
                return None
            if not user.is_active:  # switched off here: that wins over the directory
                transaction.set_rollback(True)
                return None
            group_dns = {_normal_dn(dn) for dn in ldap_user.group_dns}
            allowed = directory.sync_directory_user(
                user,
                is_admin=_is_member(self.settings.ADMIN_GROUP, group_dns),
                is_clinician=_is_member(self.settings.CLINICIAN_GROUP, group_dns),
                team_names=directory.teams_from_groups(ldap_user.group_names),
                source="ldap")
            if not allowed:
                transaction.set_rollback(True)
                return None
            return user

    def get_or_build_user(self, username, ldap_user):
        user, built = super().get_or_build_user(username, ldap_user)
        # A local account (one with a password of its own: the first admin, a service account)
        # stays local: a directory entry of the same name must not take it over, change its
        # role, or sign in as it. Accounts made here have no usable password.
        if not built and user.has_usable_password():
            logger.warning("directory sign-in refused: user id %s is a local account", user.pk)
            raise type(ldap_user).AuthenticationFailed("a local account of that name exists")
        return user, built

    def get_user(self, user_id):
        # As ModelBackend does (django-auth-ldap does not): an account switched off here ends
        # its sessions at once.
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


def _is_member(group_dn: str, group_dns: set[str]) -> bool:
    return bool(group_dn) and _normal_dn(group_dn) in group_dns


@receiver(ldap_error, sender=DirectoryLDAPBackend)
def _directory_failed(sender, context, request=None, exception=None, **kwargs):
    # django-auth-ldap logs the error and carries on as if the name were unknown; the user's
    # own wrong password is not an ldap_error (it is AuthenticationFailed), so this is always
    # the directory's side: down, too slow, or the service account's bind refused.
    if request is not None:
        setattr(request, DIRECTORY_UNREACHABLE, True)
    logger.warning("directory unreachable (%s): %s", context, type(exception).__name__)
