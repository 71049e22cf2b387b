"""Two-factor sign-in for local accounts (django-otp: TOTP and recovery codes; issue 24).

Administrators, and anyone who opens the Django admin, must use it; clinicians may turn it on,
and TWO_FACTOR_REQUIRED_FOR_ALL makes it required for everyone. Users who sign in with OpenID
Connect are never asked here (their identity provider asks, under the hospital's policies); LDAP
users are, unless TWO_FACTOR_FOR_LDAP is off (webapp.accounts.two_factor,
docs/operate/two-factor.md)."""

from ._environment import env

TWO_FACTOR_REQUIRED_FOR_ALL = env.bool("TWO_FACTOR_REQUIRED_FOR_ALL", default=False)
# An LDAP sign-in is a password typed here (a bind checks nothing more): asked like a local one,
# unless the hospital covers it otherwise (webapp.accounts.two_factor).
TWO_FACTOR_FOR_LDAP = env.bool("TWO_FACTOR_FOR_LDAP", default=True)
# The name an authenticator app shows beside the account ("Pneumothorax Triage: jsmith").
OTP_TOTP_ISSUER = env("TWO_FACTOR_ISSUER", default="Pneumothorax Triage")
# django-otp's own admin pages would show a device's secret key to an administrator; ours offer
# no such page anyway (webapp.accounts.two_factor_admin), and this keeps it so if one comes back.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
