"""Command-line tools for the Pneumothorax Triage REST API (``python -m triage.client``)."""
