"""Pneumothorax Triage: the Django project (settings, URLs) and its apps."""
