"""Directory sign-in, whichever the protocol (LDAP in _ldap.py, OpenID Connect in its own
module): what both map from the directory's groups to our teams (webapp.accounts.directory)."""

from ._environment import env

# A directory group whose name starts with this names a team: "triage-team-Emergency" puts its
# members in the team "Emergency" (created on first sign-in). Other groups are ignored.
DIRECTORY_TEAM_PREFIX = env("DIRECTORY_TEAM_PREFIX", default="triage-team-")
