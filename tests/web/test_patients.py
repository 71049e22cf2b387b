"""Patients, kept pseudonymous (issue 22): films of one patient link by a keyed hash of the
DICOM's PatientID (with its issuer) or of a typed patient reference, and the identifier itself is
stored, logged and answered nowhere; the patient page lists the films the viewer may see.

Real DICOMs of the shared SIIM-ACR subset: their headers carry a Patient ID of their own per
image (the challenge's anonymisation), so the films of one patient (labels.csv's patient_id)
get that patient's id written into PatientID, as the hospital's PACS would have it."""

from __future__ import annotations

import csv
import datetime
import io
import re
from collections import defaultdict

import pydicom
import pytest
from django.apps import apps
from django.core import serializers
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.support.data import SHARED_DATA, subset_image
from tests.support.factories import CaseFactory, TeamFactory
from tests.support.stow import multipart, stow
from tests.support.stubs import StubPredictor, Upload
from webapp.cases.models import Case, CaseImage, Job
from webapp.cases.services import patients
from webapp.cases.services.pipeline import analyse_job
from webapp.cases.storage import private_storage

pytestmark = pytest.mark.django_db


@pytest.fixture
def token_client(settings):
    """REST API clients with a token of their user (as tests/api/conftest.py makes them)."""
    from rest_framework.test import APIClient

    from tests.support.tokens import issue_key
    from webapp.api.throttling import _cache

    settings.API_THROTTLE_CACHE_URL = "locmemcache://patients-tests"  # counts of this test only
    _cache(settings.API_THROTTLE_CACHE_URL).clear()
    keys = {}

    def make(user):
        client = APIClient(REMOTE_ADDR="10.4.5.6")
        keys.setdefault(user.pk, issue_key(user))
        client.credentials(HTTP_AUTHORIZATION=f"Token {keys[user.pk]}")
        return client
    return make


def patient_with_two_dicoms() -> tuple[str, list]:
    """labels.csv's first patient with two DICOM films: (patient id, their paths)."""
    films = defaultdict(list)
    with open(SHARED_DATA / "labels.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["image"].endswith(".dcm"):
                films[row["patient_id"]].append(SHARED_DATA / row["image"])
    patient, paths = next((p, f) for p, f in sorted(films.items()) if len(f) >= 2)
    return patient, paths[:2]


def dicom(path, patient_id: str | None, study_date: str = "", issuer: str | None = None) -> bytes:
    dataset = pydicom.dcmread(path)
    if patient_id is not None:
        dataset.PatientID = patient_id
    if issuer is not None:
        dataset.IssuerOfPatientID = issuer
    if study_date:
        dataset.StudyDate = study_date
    out = io.BytesIO()
    dataset.save_as(out)
    return out.getvalue()


def upload_page(client, name, data, **fields):
    return client.post(reverse("cases:upload"),
                       {"images": [SimpleUploadedFile(name, data)], **fields})


def new_case(response) -> Case:
    assert response.status_code == 302, response.content.decode()[:2000]
    return Case.objects.get(pk=response["Location"].rstrip("/").rsplit("/", 1)[-1])


def finish(case: Case, predictor=None) -> None:
    for image in case.images.all():
        assert analyse_job(image.job.pk, predictor or StubPredictor()) == "done"


def database_text() -> str:
    """Every row of every model of the product (cases, images, jobs, audit rows, idempotency
    keys...), serialised: what a database dump would hold."""
    models = [m for m in apps.get_models() if m.__module__.startswith("webapp.")]
    return "\n".join(serializers.serialize("json", m.objects.all()) for m in models)


# --- the key --------------------------------------------------------------------------------

def test_the_key_is_a_keyed_hash_of_an_unambiguous_pair(settings):
    key = patients.patient_key("12345", "HOSP")
    assert re.fullmatch(r"[0-9a-f]{64}", key) and "12345" not in key
    assert patients.patient_key("  12345 ", "HOSP") == key  # padding is no part of the id
    assert patients.patient_key("12345", "") != key  # the issuer is part of the patient
    assert patients.patient_key("2345", "HOSP1") != key  # the pair cannot run into each other
    assert patients.patient_key("ab12") != patients.patient_key("AB12")  # case is kept
    assert patients.patient_key("") == patients.patient_key("   ") == ""
    settings.PATIENT_KEY_SECRET = "another site's secret"
    assert patients.patient_key("12345", "HOSP") != key  # without the secret, no way back


@pytest.mark.parametrize("placeholder", ["UNKNOWN", "unknown ", "Anonymous", "0", "N/A", "-"])
def test_a_placeholder_identifier_links_no_one(placeholder):
    """An emergency registration's "UNKNOWN" names no patient: linked, every unknown patient
    would be one, and a film would be compared with a stranger's."""
    assert patients.patient_key(placeholder, "HOSP") == ""
    assert patients.patient_key("UNKNOWN-4711", "HOSP") != ""  # a real id that merely starts so


def test_a_site_without_a_secret_fails_the_deploy_check(settings):
    assert patients.check_secret() == []
    settings.PATIENT_KEY_SECRET = ""
    assert [e.id for e in patients.check_secret()] == ["patients.E001"]
    assert patients.patient_key("12345") == ""  # films stay unlinked rather than refused


# --- linking at submission ------------------------------------------------------------------

def test_two_real_dicoms_of_one_patient_link_and_the_id_is_stored_nowhere(
        login, owner, token_client):
    patient, (first, second) = patient_with_two_dicoms()
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in (first, second)]
    client = login(owner)
    later = new_case(upload_page(client, first.name, dicom(first, patient, "20240303")))
    earlier = new_case(upload_page(client, second.name, dicom(second, patient, "20240301")))
    assert later.patient_key == earlier.patient_key == patients.patient_key(patient)
    assert patient not in later.patient_key
    assert [c.images.get().study_date for c in (earlier, later)] == [
        datetime.date(2024, 3, 1), datetime.date(2024, 3, 3)]
    audit = {e.detail["patient"] for e in apps.get_model("audit", "AuditEvent").objects.filter(
        action="upload")}
    assert audit == {"dicom"}  # how it was linked; never to whom
    finish(later)
    finish(earlier)

    answers = [client.get(reverse("cases:detail", args=[later.pk])),
               client.get(reverse("cases:patient", args=[later.pk])),
               token_client(owner).get("/api/v1/cases/"),
               token_client(owner).get(f"/api/v1/cases/{later.pk}/")]
    assert all(a.status_code == 200 for a in answers)
    stored = database_text()
    originals = [h.PatientID for h in headers] + [str(h.PatientName) for h in headers]
    for secret in [patient, *originals]:
        assert secret not in stored
        for answer in answers:
            assert secret not in answer.content.decode()
        for image in CaseImage.objects.all():  # the stored files are de-identified
            assert secret.encode() not in private_storage.open(image.original.name).read()
    for answer in answers[2:]:  # the key is no part of the API's answers either
        assert later.patient_key not in answer.content.decode()


def test_a_typed_reference_links_a_png_to_the_patients_dicoms(login, owner, token_client):
    reference = "MRN-0042"
    client = login(owner)
    typed = new_case(upload_page(client, "a.png", subset_image("png").read_bytes(),
                                 patient_reference=reference))
    response = token_client(owner).post(
        "/api/v1/cases/", {"images": [SimpleUploadedFile("b.png", subset_image("png", 1).read_bytes())],
                           "patient_reference": f"  {reference} "},
        format="multipart", HTTP_IDEMPOTENCY_KEY="retry-1")
    assert response.status_code == 201, response.content
    assert reference not in response.content.decode()
    by_api = Case.objects.get(pk=response.json()["id"])
    # The PACS writes the hospital number into PatientID: a DICOM of the patient links too.
    from_pacs = new_case(upload_page(client, "c.dcm", dicom(subset_image("dcm", 2), reference)))
    assert typed.patient_key == by_api.patient_key == from_pacs.patient_key != ""
    assert typed.images.get().study_date is None  # a PNG has none: its upload date orders it
    # Letters keep their case: another reference is another patient.
    other = new_case(upload_page(client, "d.png", subset_image("png", 2).read_bytes(),
                                 patient_reference=reference.lower()))
    assert other.patient_key not in ("", typed.patient_key)
    # A typed reference overrides the DICOM's own Patient ID.
    overridden = new_case(upload_page(client, "e.dcm", dicom(subset_image("dcm", 3), "999"),
                                      patient_reference=reference))
    assert overridden.patient_key == typed.patient_key
    assert reference not in database_text() and reference.lower() not in database_text()


@pytest.mark.parametrize("reference, reason", [
    ("8" * 65, "at most 64 characters"),
    ("MRN\x1b[31m42", "control characters"),
])
def test_a_bad_reference_is_refused_with_its_reason_and_never_shown_back(
        login, owner, token_client, reference, reason):
    page = upload_page(login(owner), "a.png", subset_image("png").read_bytes(),
                       patient_reference=reference)
    assert page.status_code == 400
    assert reason in page.content.decode() and reference not in page.content.decode()
    api = token_client(owner).post(
        "/api/v1/cases/", {"images": [SimpleUploadedFile("a.png", subset_image("png").read_bytes())],
                           "patient_reference": reference}, format="multipart")
    assert api.status_code == 400
    body = api.json()
    assert "patient_reference" in str(body) and reference not in api.content.decode()
    assert Case.objects.count() == 0


def test_stow_rs_and_the_dicom_listener_link_their_films_too(owner, token_client):
    from webapp.pacs.models import DicomNode
    from webapp.pacs.services.ingest import receive_instance

    stowed = stow(token_client(owner), multipart(dicom(subset_image("dcm", 0), "H-77", issuer="HOSP")))
    assert stowed.status_code == 200, stowed.content
    node = DicomNode.objects.create(ae_title="MODALITY1", host="127.0.0.1", port=4242, owner=owner)
    received, new = receive_instance(node, dicom(subset_image("dcm", 1), "H-77", issuer="HOSP"),
                                     association="test")
    assert new
    key = patients.patient_key("H-77", "HOSP")
    assert [c.patient_key for c in Case.objects.order_by("created_at")] == [key, key]
    assert received.image.case.patient_key == key


# --- the patient page -------------------------------------------------------------------------

@pytest.fixture
def wards(make_user, owner):
    """Ward A: the owner and a teammate; ward B: someone else; a stranger in no team."""
    teammate, ward_b_member = make_user("teammate"), make_user("ward-b")
    return {"a": TeamFactory(name="Ward A", members=[owner, teammate]),
            "b": TeamFactory(name="Ward B", members=[ward_b_member]),
            "teammate": teammate, "ward_b_member": ward_b_member, "stranger": make_user("stranger")}


def patient_case(user, patient, date, index=0, predictor=None):
    data = dicom(subset_image("dcm", index), patient, date)
    case = CaseFactory(owner=user, uploads=[Upload(f"film-{date}.dcm", data)])
    finish(case, predictor)
    return case


def listed(response) -> list[str]:
    assert response.status_code == 200
    return re.findall(r'<tr data-image-id="([0-9a-f-]+)"', response.content.decode())


def image_id(case) -> str:
    return str(case.images.get().pk)


def test_owner_teammate_stranger_and_admin_on_the_patient_page(
        login, owner, administrator, wards):
    mine = patient_case(owner, "P-1", "20240301")
    teammates = patient_case(wards["teammate"], "P-1", "20240302", index=1)
    other_ward = patient_case(wards["ward_b_member"], "P-1", "20240303", index=2)
    url = reverse("cases:patient", args=[mine.pk])
    assert listed(login(owner).get(url)) == [image_id(mine), image_id(teammates)]
    assert listed(login(wards["teammate"]).get(url)) == [image_id(mine), image_id(teammates)]
    assert login(wards["stranger"]).get(url).status_code == 404
    assert login(wards["ward_b_member"]).get(url).status_code == 404
    assert listed(login(wards["ward_b_member"]).get(
        reverse("cases:patient", args=[other_ward.pk]))) == [image_id(other_ward)]
    assert listed(login(administrator).get(url)) == [
        image_id(mine), image_id(teammates), image_id(other_ward)]


def test_the_patient_page_lists_films_in_date_order_with_their_calls_and_a_plot(login, owner):
    # Uploaded out of order: the study dates order them; the PNG (no study date) by its upload.
    march = patient_case(owner, "P-2", "20240305", index=0)
    february = patient_case(owner, "P-2", "20240220", index=1,
                            predictor=StubPredictor(0.1, positive=False))
    png = CaseFactory(owner=owner, uploads=[Upload("today.png", subset_image("png").read_bytes())])
    Case.objects.filter(pk=png.pk).update(patient_key=march.patient_key)
    finish(png)
    Job.objects.filter(image__case=march).update(comparison={
        "trend": "new", "prior_date": "2024-02-20", "prior_image_id": image_id(february)})

    client = login(owner)
    detail = client.get(reverse("cases:detail", args=[march.pk])).content.decode()
    url = reverse("cases:patient", args=[march.pk])
    assert f'href="{url}"' in detail and "All films of this patient" in detail
    response = client.get(url)
    assert listed(response) == [image_id(february), image_id(march), image_id(png)]
    page = response.content.decode()
    assert "New since the prior film" in page and "Not detected" in page
    assert "Pneumothorax suspected" in page and "(uploaded)" in page
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count('<circle data-series="area"') == 3  # every finished film's area
    assert svg.count('<rect data-series="rim"') == 1  # rim depth: the DICOM with a finding
    assert "20 Feb 2024" in svg and "<desc" in svg
    area_y = [float(y) for y in re.findall(r'<circle data-series="area" cx="[\d.]+" cy="([\d.]+)"', svg)]
    assert area_y[0] > area_y[1]  # nothing in February, then an area: the line goes up
    assert client.get(reverse("cases:patient", args=[february.pk])).status_code == 200


def test_a_case_without_a_patient_has_no_link_and_no_page(login, owner):
    case = CaseFactory(owner=owner, uploads=[Upload("a.png", subset_image("png").read_bytes())])
    client = login(owner)
    assert "All films of this patient" not in client.get(
        reverse("cases:detail", args=[case.pk])).content.decode()
    assert client.get(reverse("cases:patient", args=[case.pk])).status_code == 404
