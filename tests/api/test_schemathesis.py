"""schemathesis (pinned) against the served OpenAPI schema, in process through Django's WSGI
app on the pytest-django PostgreSQL test database: for every operation, a bounded number of
generated requests (hypothesis, derandomized) plus each GET/DELETE on real objects; no 5xx,
and every response conforms to the schema (status code, content type, body, headers)."""

import contextlib

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance]
MAX_EXAMPLES = 12


@contextlib.contextmanager
def keep_the_test_transaction():
    """As Django's test client does around each request: requests made straight through the
    WSGI app must not close the connection that holds the test's transaction. (Entered after
    the fixtures: the test client reconnects the handlers after each of its own requests.)"""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_api_conforms_to_its_schema(owner, token_client, api_done_case, api_case):
    from rest_framework.authtoken.models import Token

    from webapp.wsgi import application

    batch = token_client(owner).post("/api/v1/batches/", {"label": "s"}, format="json").json()
    png_case = api_case(owner, extension="png", batch=batch["id"])
    headers = {"Authorization": f"Token {Token.objects.get(user=owner).key}",
               "REMOTE_ADDR": "127.0.0.1"}
    real = {"case_id": api_done_case["id"], "image_id": api_done_case["images"][0]["id"],
            "batch_id": batch["id"]}
    with keep_the_test_transaction():
        _run_schemathesis(application, headers, real)
    assert png_case["id"]


def _run_schemathesis(application, headers, real):
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application,
                                            headers={"Authorization": headers["Authorization"]})
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14

    failures = []
    for operation in sorted(operations, key=lambda op: op.method == "delete"):  # deletes last
        label = f"{operation.method.upper()} {operation.path}"

        @hypothesis.settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                             database=None, suppress_health_check=list(HealthCheck),
                             phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate])
        @given(case=operation.as_strategy())
        def run(case):
            response = case.call(headers={"Authorization": headers["Authorization"]})
            case.validate_response(response, checks=CHECKS)

        try:
            run()
        except Exception as exc:  # collect every operation's failures, then report them all
            failures.append(f"{label}: {exc}")
            continue
        # The same operation on real objects (generated UUIDs only ever find nothing).
        params = {name: real[name] for name in ("case_id", "image_id", "batch_id")
                  if "{" + name + "}" in operation.path}
        if params and operation.method in ("get", "delete"):
            case = operation.Case(path_parameters=params)
            response = case.call(headers={"Authorization": headers["Authorization"]})
            try:
                case.validate_response(response, checks=CHECKS)
            except Exception as exc:
                failures.append(f"{label} (real ids): {exc}")
            assert response.status_code in (200, 204), (label, response.status_code, response.text[:300])
    assert not failures, "\n\n".join(failures)
