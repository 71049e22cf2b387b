"""Patients, kept pseudonymous (issue 22; webapp.cases.services.patients, docs/use/follow-up.md).

A film is linked to its patient by a keyed hash (HMAC-SHA256) of the patient identifier, never
by the identifier itself. The key is a site secret: without it, nobody holding the database can
tell which identifier a hash stands for by hashing candidate hospital numbers (they are short
and guessable). It must stay the same for the life of the site's data: a new secret links new
films to nobody seen before.

Where it is set: ``webapp.settings.local`` (scripts/run) makes one once and keeps it under var/
(like the secret key); ``webapp.settings.production`` takes it from the environment, and
``manage.py check --deploy`` fails without it (check ``patients.E001``)."""

from ._environment import env

PATIENT_KEY_SECRET = env("PATIENT_KEY_SECRET", default="")
# The issuer that a typed patient reference (the upload page's and the API's patient_reference)
# is hashed with: the IssuerOfPatientID that this site's PACS writes ("" when it writes none, the
# usual case), so that a PNG follow-up typed with the hospital number links to the patient's
# DICOM films.
PATIENT_REFERENCE_ISSUER = env("PATIENT_REFERENCE_ISSUER", default="")
