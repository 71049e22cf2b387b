"""The comparison with the patient's prior film (webapp.cases.services.comparison), on real films
of the shared SIIM-ACR subset and the real model: each job is run in-process by the worker's own
service (``pipeline.analyse_job``) with the predictor a worker builds (``workers.model``), loaded
once for the module. Patients are linked the way an upload links them: by the patient reference
given with the case (the subset's DICOMs carry a different anonymised PatientID on every film, so
its ``patient_id`` column is what ties one patient's films together).

The films, and what the shipped model makes of them (area: the outlined share of the image):
- patient 00027213: film 7010, positive, 0.6% of the image; film 7041, positive, 2.3%;
- patient 00025368: film 6193, negative; film 6644, positive, 2.1%."""

from __future__ import annotations

import contextlib
import io
import uuid

import pytest
from django.urls import reverse
from PIL import Image

from ml.core.reading import read_xray
from tests.support.data import SHARED_IMAGES
from tests.support.factories import CaseFactory, TeamFactory, UserFactory
from tests.support.stubs import StubPredictor, Upload
from webapp.cases.models import Job, JobStatus
from webapp.cases.services import comparison
from webapp.cases.services.pipeline import analyse_job
from webapp.cases.services.submission import submit_case

pytestmark = pytest.mark.django_db

PREFIX = "1.2.276.0.7230010.3.1.4.8323329."
FILMS = {
    "small": PREFIX + "7010.1517875202.349776.dcm",  # patient 00027213
    "large": PREFIX + "7041.1517875202.485810.dcm",  # patient 00027213
    "clear": PREFIX + "6193.1517875196.959059.dcm",  # patient 00025368, nothing outlined
    "found": PREFIX + "6644.1517875199.380151.dcm",  # patient 00025368
}
KEYS = {"prior_image_id", "prior_case_id", "prior_date", "trend", "area_fraction",
        "prior_area_fraction", "area_fraction_change", "rim_depth_mm", "prior_rim_depth_mm",
        "rim_depth_change_mm"}


@pytest.fixture(scope="module")
def predictor(django_db_setup, django_db_blocker):
    """The predictor a worker process builds (workers.model), loaded once: the registry's active
    model, which it reads from the database (empty here: the configured file). Loading also
    registers the version it serves: rolled back, so that no row outlives this module."""
    from django.db import transaction

    from workers.model import get_predictor

    with django_db_blocker.unblock(), transaction.atomic():
        predictor = get_predictor()
        transaction.set_rollback(True)
    return predictor


def film(name: str) -> Upload:
    path = SHARED_IMAGES / FILMS[name]
    return Upload(path.name, path.read_bytes())


def as_jpeg(name: str, quality: int = 95) -> Upload:
    """The film re-encoded, as another system might send it: its pixels as a JPEG."""
    buffer = io.BytesIO()
    Image.fromarray(read_xray(SHARED_IMAGES / FILMS[name]).pixels).save(
        buffer, format="JPEG", quality=quality)
    return Upload(FILMS[name].replace(".dcm", f".q{quality}.jpg"), buffer.getvalue())


def as_rotated_png(name: str, degrees: float) -> Upload:
    """The film turned about its centre, as a film placed slightly off square, as a PNG."""
    pixels = read_xray(SHARED_IMAGES / FILMS[name]).pixels
    buffer = io.BytesIO()
    Image.fromarray(pixels).rotate(degrees, resample=Image.BILINEAR).save(buffer, format="PNG")
    return Upload(FILMS[name].replace(".dcm", f".rotated{degrees}.png"), buffer.getvalue())


@pytest.fixture
def analysed(predictor):
    """Submit ``upload`` as ``user`` (for ``patient``, a patient reference), run its job with the
    real model, and return the finished job."""
    def make(user, upload: Upload, patient: str | None = None, team=None) -> Job:
        case = submit_case(user, [upload], "10.0.0.9", team=team, patient_reference=patient or "")
        image = case.images.get()
        assert analyse_job(image.job.pk, predictor, worker="test") == "done"
        return Job.objects.select_related("image__case").get(pk=image.job.pk)
    return make


def test_two_films_of_one_patient_are_compared_with_the_right_prior(analysed, owner):
    small = analysed(owner, film("small"), "00027213")
    large = analysed(owner, film("large"), "00027213")
    assert small.comparison is None  # the patient's first film
    found = large.comparison
    assert set(found) == KEYS
    assert found["prior_image_id"] == str(small.image.pk)
    assert found["prior_case_id"] == str(small.image.case_id)
    # Both DICOMs: their StudyDate (the subset's is 1901-01-01) dates the prior; both have a
    # pixel spacing, so the rim depths are compared too.
    assert found["prior_date"] == small.image.study_date.isoformat() == "1901-01-01"
    # The trend follows from the two results: both positive, the area grew beyond the noise.
    assert small.positive and large.positive
    assert found["prior_area_fraction"] == small.area_fraction
    assert found["area_fraction"] == large.area_fraction
    assert found["area_fraction_change"] == pytest.approx(large.area_fraction - small.area_fraction)
    assert found["area_fraction_change"] > 0.0075 and found["trend"] == "larger"
    assert found["rim_depth_mm"] == large.findings["rim_depth_mm"]
    assert found["prior_rim_depth_mm"] == small.findings["rim_depth_mm"]
    assert found["rim_depth_change_mm"] == pytest.approx(
        large.findings["rim_depth_mm"] - small.findings["rim_depth_mm"], abs=0.05)


def test_the_same_film_re_encoded_or_rotated_is_unchanged(analysed, owner):
    """The DICOM, then its pixels as a JPEG at quality 95, then rotated by 2 degrees as a PNG
    (later uploads, dated by upload time): the model's outline moves a little, by less than the
    measured noise."""
    dicom = analysed(owner, film("large"), "00027213")
    again = analysed(owner, as_jpeg("large"), "00027213")
    found = again.comparison
    assert found["prior_image_id"] == str(dicom.image.pk) and found["trend"] == "unchanged"
    assert again.positive and dicom.positive
    assert found["area_fraction_change"] != 0  # re-encoding did move the outline...
    assert abs(found["area_fraction_change"]) < 0.0075  # ...within the noise
    # The JPEG has no pixel spacing: no rim depth in mm to compare.
    assert found["rim_depth_change_mm"] is None and found["rim_depth_mm"] is None
    assert again.review_first is True  # positive, as any positive film; not for its comparison

    rotated = analysed(owner, as_rotated_png("large", degrees=2), "00027213")
    assert rotated.comparison["prior_image_id"] == str(again.image.pk)
    assert rotated.comparison["area_fraction_change"] != 0
    assert rotated.comparison["trend"] == "unchanged"


def test_the_noise_rule_needs_both_thresholds(settings):
    """Beyond the noise: a change above COMPARISON_AREA_NOISE *and* above
    COMPARISON_AREA_NOISE_RELATIVE of the larger area (docs/develop/comparison-noise.md)."""
    settings.COMPARISON_AREA_NOISE, settings.COMPARISON_AREA_NOISE_RELATIVE = 0.0075, 0.16
    assert not comparison.area_change_is_noise(0.018, 0.010)  # +0.008, 44%: larger
    assert not comparison.area_change_is_noise(0.010, 0.018)  # smaller, the same way
    assert comparison.area_change_is_noise(0.012, 0.005)  # +0.007: below the absolute one
    assert comparison.area_change_is_noise(0.058, 0.050)  # +0.008 but 14%: below the relative one
    assert not comparison.area_change_is_noise(0.062, 0.050)  # +0.012, 19%


def test_a_finding_where_the_prior_had_none_is_new(analysed, owner):
    clear = analysed(owner, film("clear"), "00025368")
    found = analysed(owner, film("found"), "00025368")
    assert clear.positive is False and found.positive is True
    assert found.comparison["trend"] == "new"
    assert found.comparison["prior_image_id"] == str(clear.image.pk)
    assert found.comparison["prior_area_fraction"] == 0.0
    # Both have a pixel spacing: nothing outlined before is a rim of 0 mm.
    assert found.comparison["prior_rim_depth_mm"] == 0.0
    assert found.comparison["rim_depth_change_mm"] == found.findings["rim_depth_mm"]
    # And the other way round: the finding gone.
    later = analysed(owner, as_jpeg("clear"), "00025368")
    assert later.comparison["trend"] == "resolved"
    assert later.comparison["prior_image_id"] == str(found.image.pk)


def test_larger_is_reviewed_first_with_its_reason_on_top_of_the_worklist(analysed, owner, login):
    # A more suspicious film of another patient, finished last: without the comparison it
    # would head the worklist (the highest probability among the urgent).
    analysed(owner, film("small"), "00027213")
    larger = analysed(owner, film("large"), "00027213")
    other = CaseFactory(owner=owner, predictor=StubPredictor(0.999, True))
    assert larger.comparison["trend"] == "larger" and larger.review_first is True
    assert Job.objects.get(image__case=other).probability > larger.probability

    page = login(owner).get(reverse("cases:list")).content.decode()
    rows = page.split('data-case-id="')[1:]
    assert rows[0].startswith(str(larger.image.case_id))
    assert comparison.LARGER_REASON in rows[0]
    assert comparison.LARGER_REASON not in "".join(rows[1:])


def test_no_prior_no_comparison(analysed, owner, token_client_for):
    alone = analysed(owner, film("found"), "00025368")
    unlinked = analysed(owner, as_jpeg("found"))  # a PNG/JPEG without a patient reference
    assert alone.comparison is None and unlinked.comparison is None
    assert unlinked.image.case.patient_key == ""
    body = token_client_for(owner).get(f"/api/v1/cases/{alone.image.case_id}/").json()
    assert "comparison" in body["images"][0] and body["images"][0]["comparison"] is None


def test_a_prior_the_owner_cannot_see_is_not_used(analysed, owner, other):
    """Teams: the owner's film is the teammate's prior; a stranger's film of the same patient,
    taken later, is never the owner's (nor is the owner's film the stranger's)."""
    ward, elsewhere = TeamFactory(members=[owner]), TeamFactory(members=[other])
    teammate = UserFactory()
    ward.members.add(teammate)
    clear = analysed(owner, film("clear"), "00025368", team=ward)
    stranger = analysed(other, film("found"), "00025368", team=elsewhere)
    assert stranger.comparison is None
    mine = analysed(owner, as_jpeg("found"), "00025368", team=ward)
    # The stranger's positive film is the latest; the owner's own negative one is the prior.
    assert mine.comparison["prior_image_id"] == str(clear.image.pk)
    assert mine.comparison["trend"] == "new"
    theirs = analysed(teammate, as_jpeg("found", quality=75), "00025368", team=ward)
    assert theirs.comparison["prior_image_id"] == str(mine.image.pk)


def test_the_api_describes_the_comparison_as_its_schema_says(analysed, owner, token_client_for):
    """The image's ``comparison`` in the API, checked against the served OpenAPI schema (what
    the docs' reference is generated from) by schemathesis, as tests/api/test_schemathesis.py."""
    import schemathesis
    from rest_framework.test import APIClient
    from schemathesis.specs.openapi.checks import response_schema_conformance

    from tests.support.tokens import issue_key
    from webapp.wsgi import application

    analysed(owner, film("small"), "00027213")
    larger = analysed(owner, film("large"), "00027213")
    token = f"Token {issue_key(owner)}"
    client = APIClient(REMOTE_ADDR="10.4.5.6")
    client.credentials(HTTP_AUTHORIZATION=token)
    image_url = f"/api/v1/cases/{larger.image.case_id}/images/{larger.image.pk}/"
    body = client.get(image_url).json()
    assert set(body["comparison"]) == KEYS and body["comparison"]["trend"] == "larger"
    assert uuid.UUID(body["comparison"]["prior_image_id"])

    with _keep_the_test_transaction():
        schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application,
                                                headers={"Authorization": token})
        components = schema.raw_schema["components"]["schemas"]
        assert set(components["Comparison"]["properties"]) == KEYS
        trend = components["Comparison"]["properties"]["trend"]["allOf"][0]["$ref"]
        assert components[trend.rsplit("/", 1)[-1]]["enum"] == list(comparison.TRENDS)
        for path, params in (
                ("/api/v1/cases/{case_id}/images/{image_id}/",
                 {"case_id": str(larger.image.case_id), "image_id": str(larger.image.pk)}),
                ("/api/v1/cases/{case_id}/", {"case_id": str(larger.image.case_id)})):
            operation = schema[path]["GET"]
            case = operation.Case(path_parameters=params)
            response = case.call(headers={"Authorization": token})
            assert response.status_code == 200
            case.validate_response(response, checks=[response_schema_conformance])


@pytest.fixture
def token_client_for():
    from rest_framework.test import APIClient

    from tests.support.tokens import issue_key

    def make(user):
        client = APIClient(REMOTE_ADDR="10.4.5.6")
        client.credentials(HTTP_AUTHORIZATION=f"Token {issue_key(user)}")
        return client
    return make


@contextlib.contextmanager
def _keep_the_test_transaction():
    """Requests made straight through the WSGI app must not close the connection that holds the
    test's transaction (as in tests/api/test_schemathesis.py)."""
    from django.core import signals
    from django.db import close_old_connections

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_nothing_outlined_either_time_is_unchanged_and_failed_films_are_no_prior(analysed, owner):
    """Both negative: unchanged. A prior whose analysis failed has no result to compare with."""
    clear = analysed(owner, film("clear"), "00025368")
    broken = submit_case(owner, [as_jpeg("clear")], "10.0.0.9", patient_reference="00025368")
    from webapp.cases.services import jobs

    job = broken.images.get().job
    jobs.fail_job(job.pk, None, "test: the analysis failed")
    again = analysed(owner, as_jpeg("clear", quality=75), "00025368")
    assert Job.objects.get(pk=job.pk).status == JobStatus.FAILED
    assert again.comparison["prior_image_id"] == str(clear.image.pk)
    assert again.comparison["trend"] == "unchanged"


def test_a_prior_with_findings_of_another_shape_still_gives_a_result(owner):
    """A prior row whose findings the pipeline did not write (edited, or of an older version):
    the new film's result is saved, compared by area, with no rim depth. (The stub predictor:
    this is about the stored rows, not the model.)"""
    predictor = StubPredictor(0.9, True)
    first = submit_case(owner, [film("large")], "10.0.0.9", patient_reference="00027213")
    assert analyse_job(first.images.get().job.pk, predictor) == "done"
    Job.objects.filter(image__case=first).update(findings={"rim_depth_mm": "deep"})
    second = submit_case(owner, [film("small")], "10.0.0.9", patient_reference="00027213")
    assert analyse_job(second.images.get().job.pk, predictor) == "done"
    found = Job.objects.get(image__case=second).comparison
    assert found["trend"] == "unchanged" and found["area_fraction_change"] == 0
    assert found["prior_rim_depth_mm"] is None and found["rim_depth_change_mm"] is None
