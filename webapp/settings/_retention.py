"""The retention policy (webapp.cases.services.retention; docs/operate/retention.md): cases older
than RETENTION_DAYS are deleted, case by case, by the reconciler (manage.py reconcile_jobs
--every 60) every RETENTION_EVERY_S, or by hand with manage.py apply_retention."""

from ._environment import env


def _optional_days(name: str):
    """None when unset or blank (keep everything); an int when it reads as one; otherwise the
    text itself, which the system check ``cases.E001`` reports by name, so that a typo never
    starts the site with a policy nobody asked for, nor crashes it with a traceback."""
    raw = env.str(name, default="").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        return raw


# Days a case is kept after its upload; unset: kept for ever.
RETENTION_DAYS = _optional_days("RETENTION_DAYS")
# Keep an old case while an image of it awaits a clinician's review (the worklist's "not yet
# reviewed"): it goes at the first run after its last review. False: age alone decides.
RETENTION_KEEP_UNREVIEWED = env.bool("RETENTION_KEEP_UNREVIEWED", default=True)
# How often the reconciler applies the policy, and how many cases one round deletes at most (the
# rest go in the next reconciler round, a minute later, so job reconciling never waits long).
RETENTION_EVERY_S = env.int("RETENTION_EVERY_S", default=3600)
RETENTION_MAX_PER_ROUND = env.int("RETENTION_MAX_PER_ROUND", default=200)
