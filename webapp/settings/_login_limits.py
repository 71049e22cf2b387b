"""Failed log-ins (issue 24): django-axes locks a user name out from one client address after
repeated failures; webapp.accounts.login_limits slows down an address that fails over many names
instead of locking it (its docstring says why axes cannot). The environment variables keep the
names they had with our own throttle (issue 5), so a deployment's settings still apply.
``manage.py axes_reset`` (or axes_reset_username / axes_reset_ip) unlocks."""

from datetime import timedelta

from ._environment import env

# Per name + address: this many failures within the window lock that name out from that address
# until the window has passed since its latest failure.
AXES_FAILURE_LIMIT = env.int("LOGIN_THROTTLE_FAILURES", default=5)
AXES_COOLOFF_TIME = timedelta(seconds=env.int("LOGIN_THROTTLE_WINDOW_S", default=15 * 60))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
# The client address the audit log records (X-Forwarded-For only when AUDIT_TRUST_X_FORWARDED_FOR).
AXES_CLIENT_IP_CALLABLE = "webapp.audit.services.client_address"
# Our page and message, and a login_locked audit row for each refused attempt (written by
# webapp.accounts.backends.LoginLimitsBackend, whatever page the attempt came from).
AXES_LOCKOUT_CALLABLE = "webapp.accounts.login_limits.lockout_response"
# A sign-in that failed because the directory was down is not counted (unless the name is also a
# local account): webapp.accounts.login_limits.failure_is_a_directory_outage.
AXES_WHITELIST_CALLABLE = "webapp.accounts.login_limits.failure_is_a_directory_outage"
# A refused attempt is not a failure: counting it would lengthen the lock at every try.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# The audit log records every sign-in; axes' access log would be a second, unpruned copy of who
# signed in from where.
AXES_DISABLE_ACCESS_LOG = True
# No version banner in the log of every manage.py command (its lines mask names and addresses
# either way).
AXES_VERBOSE = False

# Per address: over this many failures within the window an address is slowed down (a wait after
# its latest failure, 1 s doubling per further failure up to the maximum), never locked out:
# behind a proxy everyone may share one address.
LOGIN_THROTTLE_ADDRESS_FAILURES = env.int("LOGIN_THROTTLE_ADDRESS_FAILURES", default=50)
LOGIN_THROTTLE_ADDRESS_MAX_WAIT_S = env.int("LOGIN_THROTTLE_ADDRESS_MAX_WAIT_S", default=30)
