"""The real worker fixtures (``celery_worker_process``, ``wait_for_case``) now live in
tests/worker_fixtures.py and are registered once for the whole suite by tests/conftest.py, so
that tests/e2e and tests/api share one worker process per session.

Names are still importable from here (``from tests.e2e.conftest import ...``) without pytest
registering the fixtures a second time for this folder (a module ``__getattr__`` is not seen by
pytest's fixture collection)."""


def __getattr__(name):
    from tests import worker_fixtures

    try:
        return getattr(worker_fixtures, name)
    except AttributeError:
        raise AttributeError(name) from None
