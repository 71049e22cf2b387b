"""What the tests (and bench/) share, none of it a fixture of a conftest file:

- ``data``: the repository's paths and the shared SIIM-ACR subset (the one place naming it);
- ``processes``: real processes (Celery workers, gunicorn, a redis-server of our own) and waiting
  for them; ``proxy``: a TCP proxy that can cut connections; ``connections``: database URLs and
  the Celery broker this process publishes to;
- ``stubs``: an uploaded file and a predictor that need no model; ``dicom``: synthetic DICOMs;
- ``factories``: factory_boy factories of users, uploads, cases, images and jobs;
- ``reviews``: ReviewFactory, a clinician's review through the reviews service;
- ``waiting``: polling the database or the status view until jobs finish;
- ``embedded``: the product on its embedded defaults (SQLite, filesystem broker);
- ``fault_worker``: a TEST ONLY Celery entry point, the real worker plus the fault hook;
- ``worker_fixtures``, ``fault_fixtures``: pytest plugins (registered by tests/conftest.py) with
  the session's worker processes.

Importing this package costs nothing: no Django, no pytest, no torch."""
