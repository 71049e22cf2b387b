"""Sign-in with the hospital's directory, LDAP or Active Directory (django-auth-ldap; the backend
is webapp.accounts.ldap_backend, the role and team mapping webapp.accounts.directory).

Off while ``AUTH_LDAP_SERVER_URI`` is unset. When it is set, the user is found by a search under
``AUTH_LDAP_USER_SEARCH_BASE`` on ``AUTH_LDAP_USER_ATTR`` (``uid``; ``sAMAccountName`` for Active
Directory), bound as themselves to check the password, and let in only as a member of
``AUTH_LDAP_CLINICIAN_GROUP`` or ``AUTH_LDAP_ADMIN_GROUP``; their role and teams are read again
from the directory at every sign-in. docs/operate/ldap.md is the administrator's guide.

python-ldap is imported only when LDAP is on: a settings module that imports a C extension it
does not use would make every process (workers included) depend on libldap for nothing.
"""

import functools
import operator

from django.core.exceptions import ImproperlyConfigured

from ._environment import env

# The object class of a group, by AUTH_LDAP_GROUP_TYPE: django-auth-ldap's group type and the
# filter that finds such groups. "nested" types follow groups inside groups (Active Directory
# sites often nest them); they cost one search per level at each sign-in.
_GROUP_TYPES = {
    "groupOfNames": ("GroupOfNamesType", "(objectClass=groupOfNames)"),
    "nestedGroupOfNames": ("NestedGroupOfNamesType", "(objectClass=groupOfNames)"),
    "groupOfUniqueNames": ("GroupOfUniqueNamesType", "(objectClass=groupOfUniqueNames)"),
    "activeDirectory": ("ActiveDirectoryGroupType", "(objectClass=group)"),
    "nestedActiveDirectory": ("NestedActiveDirectoryGroupType", "(objectClass=group)"),
}


def directory_ldap_settings(*, server_uri: str, user_search_base: str, user_attr: str = "uid",
                            bind_dn: str = "", bind_password: str = "",
                            group_search_base: str = "", group_type: str = "groupOfNames",
                            clinician_group: str = "", admin_group: str = "",
                            start_tls: bool = False, ca_file: str = "",
                            timeout_s: float = 5.0) -> dict:
    """The django-auth-ldap settings (AUTH_LDAP_*) for these choices. A function, so that the
    tests build theirs the same way as the environment does."""
    import ldap
    from django_auth_ldap import config

    if not user_search_base:
        raise ImproperlyConfigured("AUTH_LDAP_SERVER_URI is set: AUTH_LDAP_USER_SEARCH_BASE is "
                                   "needed too (where the users are, e.g. "
                                   "ou=people,dc=example,dc=org)")
    if not (clinician_group or admin_group):
        raise ImproperlyConfigured("AUTH_LDAP_SERVER_URI is set: AUTH_LDAP_CLINICIAN_GROUP or "
                                   "AUTH_LDAP_ADMIN_GROUP is needed (nobody could sign in)")
    if group_type not in _GROUP_TYPES:
        raise ImproperlyConfigured(f"AUTH_LDAP_GROUP_TYPE={group_type!r} is not one of "
                                   f"{', '.join(_GROUP_TYPES)}")
    type_name, group_filter = _GROUP_TYPES[group_type]
    role_groups = [dn for dn in (clinician_group, admin_group) if dn]

    # A directory that is down must fail within seconds, not hang the log-in page: the connect
    # timeout (NETWORK_TIMEOUT) and the timeout of each operation (TIMEOUT).
    connection_options = {ldap.OPT_NETWORK_TIMEOUT: timeout_s, ldap.OPT_TIMEOUT: timeout_s,
                          # Active Directory answers searches from the domain root with referrals
                          # that python-ldap would follow anonymously; never follow them.
                          ldap.OPT_REFERRALS: 0}
    if ca_file:
        # A hospital's own certificate authority, for ldaps:// or StartTLS; NEWCTX (last) makes
        # libldap build the TLS context with it.
        connection_options.update({ldap.OPT_X_TLS_CACERTFILE: ca_file,
                                   ldap.OPT_X_TLS_REQUIRE_CERT: ldap.OPT_X_TLS_DEMAND,
                                   ldap.OPT_X_TLS_NEWCTX: 0})
    return {
        "AUTH_LDAP_SERVER_URI": server_uri,
        "AUTH_LDAP_BIND_DN": bind_dn,
        "AUTH_LDAP_BIND_PASSWORD": bind_password,
        "AUTH_LDAP_START_TLS": start_tls,
        "AUTH_LDAP_CONNECTION_OPTIONS": connection_options,
        # %(user)s is escaped by LDAPSearch: a name cannot change the filter.
        "AUTH_LDAP_USER_SEARCH": config.LDAPSearch(user_search_base, ldap.SCOPE_SUBTREE,
                                                   f"({user_attr}=%(user)s)"),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_GROUP_SEARCH": config.LDAPSearch(group_search_base or user_search_base,
                                                    ldap.SCOPE_SUBTREE, group_filter),
        "AUTH_LDAP_GROUP_TYPE": getattr(config, type_name)(),
        # In neither role group: refused before any account is made (and the role sync in
        # webapp.accounts.directory refuses too, should this ever be bypassed).
        "AUTH_LDAP_REQUIRE_GROUP": _any_of([config.LDAPGroupQuery(dn) for dn in role_groups]),
        # Read the directory again at every sign-in, and cache nothing: a user taken out of a
        # group loses the role or the team at their next sign-in, not after a cache expires.
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CACHE_TIMEOUT": 0,
        # Roles and teams are ours (User.role, Team), set by webapp.accounts.directory: no Django
        # group mirroring and no permissions from directory groups.
        "AUTH_LDAP_MIRROR_GROUPS": None,
        "AUTH_LDAP_FIND_GROUP_PERMS": False,
        "AUTH_LDAP_CLINICIAN_GROUP": clinician_group,
        "AUTH_LDAP_ADMIN_GROUP": admin_group,
    }


def _any_of(queries):
    return functools.reduce(operator.or_, queries)


# The authentication backends LDAP adds (after the local accounts': base.py appends them).
LDAP_AUTHENTICATION_BACKENDS: list[str] = []
_server_uri = env("AUTH_LDAP_SERVER_URI", default="")
if _server_uri:
    globals().update(directory_ldap_settings(
        server_uri=_server_uri,
        user_search_base=env("AUTH_LDAP_USER_SEARCH_BASE", default=""),
        user_attr=env("AUTH_LDAP_USER_ATTR", default="uid"),
        bind_dn=env("AUTH_LDAP_BIND_DN", default=""),
        bind_password=env("AUTH_LDAP_BIND_PASSWORD", default=""),
        group_search_base=env("AUTH_LDAP_GROUP_SEARCH_BASE", default=""),
        group_type=env("AUTH_LDAP_GROUP_TYPE", default="groupOfNames"),
        clinician_group=env("AUTH_LDAP_CLINICIAN_GROUP", default=""),
        admin_group=env("AUTH_LDAP_ADMIN_GROUP", default=""),
        start_tls=env.bool("AUTH_LDAP_START_TLS", default=False),
        ca_file=env("AUTH_LDAP_CA_FILE", default=""),
        timeout_s=env.float("AUTH_LDAP_TIMEOUT_S", default=5.0),
    ))
    LDAP_AUTHENTICATION_BACKENDS = ["webapp.accounts.ldap_backend.DirectoryLDAPBackend"]
