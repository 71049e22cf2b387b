"""Metrics for Prometheus (issue 15): the web's /metrics view (``views``) and what it reads at
each scrape from the database and the broker (``collector``). Request metrics come from
django-prometheus's middleware; the workers' job histograms from ``workers.metrics``."""
