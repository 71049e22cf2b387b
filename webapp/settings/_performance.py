"""This site's figures on its reviewed films and the drift alarm (webapp.performance, issue 23;
docs/use/site-performance.md)."""

from ._environment import env

# The alarm stays silent until the reviews confirm at least this many films with a pneumothorax
# for a model version: with fewer, the local interval is too wide to say anything (a handful of
# reviews proves nothing).
DRIFT_MIN_POSITIVES = env.int("DRIFT_MIN_POSITIVES", default=20)
# Addresses that get the drift alarm by e-mail (comma-separated); empty: no e-mail. The webhook
# (ALERT_WEBHOOK_URL) gets it wherever it is set.
DRIFT_ALERT_EMAILS = env.list("DRIFT_ALERT_EMAILS", default=[])
# Dice on positives is shown once at least this many confirmed positives carry a corrected outline.
PERFORMANCE_MIN_OUTLINES = env.int("PERFORMANCE_MIN_OUTLINES", default=10)
