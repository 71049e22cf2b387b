"""Waiting for jobs the way the product's users do: the database (the source of truth) or the
case's status view, polled until every job has finished."""

from __future__ import annotations

import time

import pytest


def wait_until(predicate, timeout=60, poll=0.1, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(poll)


def wait_for_jobs(job_ids, timeout=120, poll=0.25):
    """Poll the database until every job is done or failed; returns them by id."""
    from webapp.cases.models import TERMINAL_STATUSES, Job

    deadline = time.monotonic() + timeout
    while True:
        jobs = {j.pk: j for j in Job.objects.filter(pk__in=list(job_ids))}
        if len(jobs) == len(set(job_ids)) and all(j.status in TERMINAL_STATUSES for j in jobs.values()):
            return jobs
        if time.monotonic() > deadline:
            pytest.fail("jobs not finished in time: "
                        + ", ".join(f"{j.pk}={j.status}/{j.attempts}" for j in jobs.values()))
        time.sleep(poll)


def wait_for_case(client, case_id, timeout=120):
    """Poll the status view, as the case page does, until every job has finished."""
    from django.urls import reverse

    deadline = time.monotonic() + timeout
    while True:
        payload = client.get(reverse("cases:status", args=[case_id])).json()
        if payload["status"] in ("done", "failed"):
            return payload
        if time.monotonic() > deadline:
            pytest.fail(f"case {case_id} still {payload['status']} after {timeout} s")
        time.sleep(0.25)
