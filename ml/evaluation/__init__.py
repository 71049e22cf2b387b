"""Evaluating a model file on held-out patients and choosing the operating point that ships."""
