"""Clinician review of the model's results (issue 11): a verdict, the true label and a comment
per image and reviewer, audited; exported as CSV for ``ml`` (``manage.py export_feedback``)."""
