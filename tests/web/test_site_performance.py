"""This site's figures on its reviewed films (webapp.performance, issue 23): checked against
figures worked out by hand on a fixture, the drift rule firing and not firing (its audit row
once, a signed drift event at a real webhook receiver on loopback), and owner, teammate,
stranger and administrator on the model page, the films page and the API.

The films are real uploads through ``submit_case`` (small PNGs made here: these tests are about
the arithmetic and who sees what, and a full-size film costs half a second to store and overlay,
dozens of times over); their jobs run through the real pipeline service with a stub predictor whose call (and model version) is the test's choice,
and the reviews are recorded by the real review service (``ReviewFactory``)."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from datetime import timedelta
from math import sqrt

import numpy as np
import pytest
from PIL import Image
from django.urls import reverse
from django.utils import timezone

from tests.support.alerts import SECRET, WebhookReceiver
from tests.support.factories import CaseFactory, TeamFactory
from tests.support.reviews import ReviewFactory
from tests.support.stubs import StubPredictor, Upload
from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import CaseImage, ModelVersion
from webapp.cases.services.pipeline import analyse_job
from webapp.performance.models import DriftAlarm
from webapp.performance.proportions import wilson_interval
from webapp.performance.services import site_figures

pytestmark = pytest.mark.django_db

VERSION = "site-v1"
API = "/api/v1/model/performance/"


class VersionedStub(StubPredictor):
    """The stub's call, under a model version of the test's choosing."""

    def __init__(self, positive: bool, version: str):
        super().__init__(probability=0.9 if positive else 0.1, positive=positive)
        self.version = version

    def predict(self, xray):
        prediction = super().predict(xray)
        prediction.model_version = self.version
        return prediction


def small_png(shade: int) -> Upload:
    return Upload(f"film-{shade}.png", png_bytes(128, shade))


def read_films(owner, calls: list[bool], version: str = VERSION) -> list[CaseImage]:
    """One case of ``owner`` with a film per call, each read by ``version`` with that call."""
    case = CaseFactory(owner=owner, uploads=[small_png(40 + i) for i in range(len(calls))])
    images = list(case.images.order_by("position"))
    for image, positive in zip(images, calls):
        assert analyse_job(image.job.pk, VersionedStub(positive, version)) == "done"
    return images


def review(reviewer, image, label):
    return ReviewFactory(reviewer=reviewer, image=image, true_label=label,
                         verdict="agree" if label != "uncertain" else "disagree")


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """The Wilson score interval, written out from the formula (z for 95%)."""
    z = 1.959963984540054
    p = k / n
    centre = (p + z ** 2 / (2 * n)) / (1 + z ** 2 / n)
    half = (z / (1 + z ** 2 / n)) * sqrt(p * (1 - p) / n + z ** 2 / (4 * n ** 2))
    return centre - half, centre + half


@dataclass
class Site:
    owner: object
    teammate: object
    stranger: object
    administrator: object
    images: list


@pytest.fixture
def site(make_user, administrator) -> Site:
    """Ten reviewed films of known outcome, by the owner (in a team with the teammate):
    4 TP, 2 FN, 3 TN, 1 FP; one film the owner and the teammate disagree on; one reviewed
    "uncertain"; one not reviewed. The stranger has one film of their own, a false negative."""
    owner, teammate, stranger = make_user("owner"), make_user("teammate"), make_user("stranger")
    TeamFactory(members=[owner, teammate])
    plan = ([(True, "present")] * 4 + [(False, "present")] * 2 + [(False, "absent")] * 3
            + [(True, "absent")])
    images = read_films(owner, [call for call, _ in plan] + [True, False, True])
    for image, (_, label) in zip(images, plan):
        review(owner, image, label)
    conflict, uncertain, _unreviewed = images[10:]
    review(owner, conflict, "present")
    review(teammate, conflict, "absent")
    review(owner, uncertain, "uncertain")
    [stranger_film] = read_films(stranger, [False])
    review(stranger, stranger_film, "present")
    return Site(owner, teammate, stranger, administrator, images)


# --- the arithmetic ---------------------------------------------------------------------------

def test_wilson_interval_matches_the_formula_and_published_values():
    assert wilson_interval(4, 6) == pytest.approx(wilson_by_hand(4, 6), abs=1e-12)
    # Newcombe (1998), table I: 81/263 -> 0.2553 to 0.3662 (method 3, Wilson without correction).
    low, high = wilson_interval(81, 263)
    assert (round(low, 4), round(high, 4)) == (0.2553, 0.3662)
    assert wilson_interval(0, 5)[0] == pytest.approx(0, abs=1e-12)
    assert wilson_interval(5, 5)[1] == pytest.approx(1)
    assert wilson_interval(0, 0) is None


def test_figures_match_those_computed_by_hand(site):
    [entry] = site_figures(site.owner, VERSION)
    o = entry.overall
    assert (o.tp, o.fn, o.tn, o.fp, o.conflicts, o.films) == (4, 2, 3, 1, 1, 10)
    expected = {"sensitivity": (4, 6), "specificity": (3, 4), "ppv": (4, 5), "npv": (3, 5)}
    for name, (k, n) in expected.items():
        p = getattr(o, name)
        assert (p.successes, p.total) == (k, n), name
        assert p.value == pytest.approx(k / n)
        low, high = wilson_by_hand(k, n)
        assert (round(p.low, 3), round(p.high, 3)) == (round(low, 3), round(high, 3)), name
    # Sensitivity 4/6 by hand: 0.300 to 0.903.
    assert (round(o.sensitivity.low, 3), round(o.sensitivity.high, 3)) == (0.300, 0.903)
    # 13 films finished; 11 have a true label (the ten, and the one the reviewers dispute).
    assert (o.finished, o.reviewed) == (13, 11)
    assert o.dice == {"films": 0, "mean": None, "enough": False, "needed": 10}


def test_figures_per_month_follow_the_upload(site):
    earlier = timezone.now() - timedelta(days=62)
    CaseImage.objects.filter(pk__in=[i.pk for i in site.images[:2]]).update(created_at=earlier)
    [entry] = site_figures(site.owner, VERSION)
    months = entry.months
    assert len(months) == 2 and list(months) == sorted(months, reverse=True)
    old = months[timezone.localtime(earlier).strftime("%Y-%m")]
    assert (old.tp, old.films, old.finished, old.reviewed) == (2, 2, 2, 2)
    assert sum(m.films for m in months.values()) == entry.overall.films


def test_the_latest_call_reviewed_is_the_snapshot_not_the_job_today(site):
    """The job re-run since with another call: the review judged the old call, which counts."""
    image = site.images[0]  # a true positive
    image.job.positive = False
    image.job.save(update_fields=["positive"])
    [entry] = site_figures(site.owner, VERSION)
    assert (entry.overall.tp, entry.overall.fn) == (4, 2)


# --- who sees what ----------------------------------------------------------------------------

def test_a_clinician_sees_their_teams_films_and_never_a_strangers(site):
    owner = site_figures(site.owner, VERSION)[0].overall
    teammate = site_figures(site.teammate, VERSION)[0].overall
    stranger = site_figures(site.stranger, VERSION)[0].overall
    admin = site_figures(site.administrator, VERSION)[0].overall
    assert (owner.films, owner.fn) == (10, 2)
    assert (teammate.films, teammate.fn) == (10, 2)  # the team's films, the owner's reviews
    assert (stranger.films, stranger.fn, stranger.finished) == (1, 1, 1)  # their own film only
    assert (admin.films, admin.fn, admin.finished) == (11, 3, 14)  # the whole site


def test_api_gives_the_same_figures_by_scope(site, login):
    def version(user):
        body = login(user).get(API).json()
        return next(v for v in body["versions"] if v["version"] == VERSION), body

    mine, body = version(site.owner)
    assert body["scope"] == "your films and your teams' films"
    assert "not a random sample" in body["honesty"]
    assert mine["counts"] == {"true_positives": 4, "false_positives": 1, "true_negatives": 3,
                              "false_negatives": 2, "conflicting_labels": 1}
    low, high = wilson_by_hand(4, 6)
    assert mine["sensitivity"]["films"] == 6
    assert mine["sensitivity"]["low"] == pytest.approx(low) and mine["sensitivity"]["high"] == pytest.approx(high)
    assert mine["reviewed_share"] == {"reviewed": 11, "finished": 13, "value": pytest.approx(11 / 13)}
    assert mine["months"][0]["films"] == 10
    assert version(site.teammate)[0]["counts"] == mine["counts"]
    assert version(site.stranger)[0]["counts"]["false_negatives"] == 1
    assert version(site.stranger)[0]["films"] == 1
    admin, body = version(site.administrator)
    assert body["scope"] == "site" and admin["films"] == 11


def test_api_needs_authentication(client, db):
    assert client.get(API).status_code in (401, 403)


def test_model_page_shows_the_site_figures_with_links(site, login):
    ModelVersion.objects.create(version=VERSION, encoder="e", image_size=256,
                                test_figures={"images": 189, "positives": 85, "negatives": 104,
                                              "true_positives": 59, "false_positives": 11,
                                              "sensitivity": 0.694, "specificity": 0.894})
    page = login(site.owner).get(reverse("cases:model_versions")).content.decode()
    assert "On this site&#x27;s reviewed films" in page or "On this site's reviewed films" in page
    assert "not a random sample" in page and "Drift alarm:" in page
    assert "0.300–0.903" in page  # the sensitivity's interval, by hand above
    assert "11 (85%) were reviewed" in page
    films = reverse("performance:films")
    assert f"{films}?version={VERSION}&amp;outcome=fn" in page
    teammate_page = login(site.teammate).get(reverse("cases:model_versions")).content.decode()
    assert "0.300–0.903" in teammate_page  # the team's films
    stranger_page = login(site.stranger).get(reverse("cases:model_versions")).content.decode()
    assert "0.300–0.903" not in stranger_page and "1 missed" in stranger_page  # their own only
    admin_page = login(site.administrator).get(reverse("cases:model_versions")).content.decode()
    assert "3 missed" in admin_page and "Now: not enough confirmed positives" in admin_page


def test_films_page_lists_the_films_behind_a_figure_in_scope(site, login):
    url = reverse("performance:films")
    page = login(site.owner).get(url, {"version": VERSION, "outcome": "fn"})
    assert page.status_code == 200
    text = page.content.decode()
    assert text.count("<td>false negative</td>") == 2
    for image in site.images[4:6]:
        assert str(image.case_id) in text
    teammate = login(site.teammate).get(url, {"version": VERSION, "outcome": "fn"}).content.decode()
    assert teammate.count("<td>false negative</td>") == 2
    stranger = login(site.stranger).get(url, {"version": VERSION, "outcome": "fn"}).content.decode()
    assert stranger.count("<td>false negative</td>") == 1 and str(site.images[0].case_id) not in stranger
    admin = login(site.administrator).get(url, {"version": VERSION, "outcome": "fn"}).content.decode()
    assert admin.count("<td>false negative</td>") == 3


@pytest.mark.parametrize("query", [{}, {"version": VERSION, "outcome": "maybe"},
                                   {"version": VERSION, "month": "2026-13"},
                                   {"version": "x" * 101}])
def test_films_page_refuses_bad_parameters_with_a_reason(login, owner, query):
    response = login(owner).get(reverse("performance:films"), query)
    assert response.status_code == 400 and response.content


# --- the drift alarm --------------------------------------------------------------------------

DRIFT = "drift-v1"
# The model card: 80 of 85 found (Wilson 0.869 to 0.975).
HELD_OUT = {"images": 185, "positives": 85, "negatives": 100, "true_positives": 80,
            "false_positives": 10, "sensitivity": 80 / 85, "specificity": 0.9}


@pytest.fixture
def drift_model(settings):
    settings.DRIFT_MIN_POSITIVES = 5
    settings.ALERT_WEBHOOK_URL = ""
    settings.DRIFT_ALERT_EMAILS = []
    return ModelVersion.objects.create(version=DRIFT, encoder="e", image_size=256,
                                       test_figures=HELD_OUT)


def drift_events():
    return AuditEvent.objects.filter(action=Action.DRIFT_ALARM)


def test_drift_rule_fires_over_enough_positives_once(drift_model, owner, login, administrator,
                                                    django_capture_on_commit_callbacks):
    films = read_films(owner, [False] * 6, version=DRIFT)  # six pneumothoraces, all missed
    for image in films[:4]:
        with django_capture_on_commit_callbacks(execute=True):
            review(owner, image, "present")
    # 0 of 4: the upper bound (0.490) is below 0.869, but 4 positives are fewer than 5.
    assert not DriftAlarm.objects.exists() and not drift_events().exists()
    with django_capture_on_commit_callbacks(execute=True):
        review(owner, films[4], "present")
    alarm = DriftAlarm.objects.get(model_version=DRIFT)
    assert alarm.active and alarm.detail["local"]["films"] == 5
    assert alarm.detail["local"]["high"] == pytest.approx(wilson_by_hand(0, 5)[1])
    assert alarm.detail["held_out"]["low"] == pytest.approx(wilson_by_hand(80, 85)[0])
    [event] = drift_events()
    assert event.object_id == str(alarm.pk) and event.detail["model_version"] == DRIFT
    audit_page = login(administrator).get(reverse("audit")).content.decode()
    assert f'{reverse("cases:model_versions")}#{DRIFT}' in audit_page  # the row links to its figures
    # Another review: the alarm is not raised again, nor audited again.
    with django_capture_on_commit_callbacks(execute=True):
        review(owner, films[5], "present")
    assert DriftAlarm.objects.count() == 1 and drift_events().count() == 1
    # Administrators see the banner on every page; a clinician does not.
    banner = "Drift alarm: model drift-v1"
    assert banner in login(administrator).get(reverse("cases:list")).content.decode()
    assert banner in login(administrator).get(reverse("cases:model_versions")).content.decode()
    assert banner not in login(owner).get(reverse("cases:list")).content.decode()
    changelist = login(administrator).get(reverse("admin:performance_driftalarm_changelist"))
    assert changelist.status_code == 200 and DRIFT in changelist.content.decode()
    api = login(administrator).get(API).json()
    [entry] = [v for v in api["versions"] if v["version"] == DRIFT]
    assert entry["drift_check"]["fires"] and entry["drift_alarm"]["active"]


def test_drift_rule_stays_silent_when_the_site_does_as_well(drift_model, owner,
                                                           django_capture_on_commit_callbacks):
    films = read_films(owner, [True] * 4 + [False], version=DRIFT)  # 4 of 5 found
    for image in films:
        with django_capture_on_commit_callbacks(execute=True):
            review(owner, image, "present")
    # 4/5: upper bound 0.964, above the held-out lower bound 0.869.
    assert wilson_by_hand(4, 5)[1] > wilson_by_hand(80, 85)[0]
    assert not DriftAlarm.objects.exists() and not drift_events().exists()


def test_drift_alarm_clears_from_the_banner_when_the_rule_no_longer_holds(
        drift_model, owner, login, administrator, django_capture_on_commit_callbacks):
    films = read_films(owner, [False] * 5, version=DRIFT)
    for image in films:
        with django_capture_on_commit_callbacks(execute=True):
            review(owner, image, "present")
    assert DriftAlarm.objects.get().active
    for image in films[:3]:  # the reviewers change their minds: no pneumothorax after all
        with django_capture_on_commit_callbacks(execute=True):
            review(owner, image, "absent")
    assert not DriftAlarm.objects.get().active and drift_events().count() == 1
    assert "Drift alarm: model" not in login(administrator).get(reverse("cases:list")).content.decode()


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def test_drift_alarm_reaches_the_webhook_signed_without_patient_data(
        drift_model, owner, settings, receiver, django_capture_on_commit_callbacks):
    from webapp.celery_app import app
    from webapp.performance.tasks import deliver_drift_alarm

    queue = f"drift-test-{os.getpid()}"
    settings.ALERT_WEBHOOK_URL, settings.ALERT_WEBHOOK_SECRET = receiver.url, SECRET
    settings.ALERT_QUEUE, settings.SITE_URL = queue, "https://triage.example.org"
    films = read_films(owner, [False] * 5, version=DRIFT)
    try:
        for image in films:
            with django_capture_on_commit_callbacks(execute=True):
                review(owner, image, "present")
        alarm = DriftAlarm.objects.get()
        with app.connection_for_write() as connection:  # queued for the alert worker
            assert connection.default_channel.queue_declare(queue, passive=True).message_count == 1
        # The task, run here as the alert worker runs it, against the real receiver.
        assert deliver_drift_alarm.apply(kwargs={"alarm_pk": alarm.pk, "channel": "webhook"}).get() == "delivered"
        assert deliver_drift_alarm.apply(kwargs={"alarm_pk": alarm.pk, "channel": "webhook"}).get() == "skipped"
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
    [received] = receiver.received
    assert received.signature_valid and received.delivery_id == f"drift-{alarm.pk}"
    body = received.payload
    assert body["event"] == "drift" and body["model_version"] == DRIFT
    assert body["local"]["films"] == 5 and body["held_out"]["films"] == 85
    assert body["model_page_url"] == "https://triage.example.org" + reverse("cases:model_versions")
    text = received.body.decode()
    for image in films:  # no film, case or person named
        assert str(image.pk) not in text and str(image.case_id) not in text
    assert owner.username not in text
    alarm.refresh_from_db()
    assert alarm.deliveries == {"webhook": "delivered"}


# --- Dice on positives, from outlines corrected in the viewer (webapp.reviews.outlines) --------

def test_dice_on_positives_from_corrected_outlines(owner, settings, login):
    from webapp.reviews.outlines import save_outline

    settings.PERFORMANCE_MIN_OUTLINES = 2
    settings.OUTLINE_MAX_BYTES = getattr(settings, "OUTLINE_MAX_BYTES", 5 * 1024 * 1024)
    case = CaseFactory(owner=owner, uploads=[Upload(f"film-{i}.png", png_bytes(384, 60 + i))
                                             for i in range(2)])
    images = list(case.images.order_by("position"))
    for image in images:  # the stub outlines rows 100-299, columns 150-349
        assert analyse_job(image.job.pk, VersionedStub(True, VERSION)) == "done"
        review(owner, image, "present")
    same = np.zeros((384, 384), dtype=np.uint8)
    same[100:300, 150:350] = 255
    half = np.zeros((384, 384), dtype=np.uint8)
    half[100:300, 250:350] = 255  # half the model's square: 2·20000 / (40000 + 20000)
    save_outline(owner, images[0], png_of(same))
    [entry] = site_figures(owner, VERSION)
    assert entry.overall.dice == {"films": 1, "mean": None, "enough": False, "needed": 2}
    save_outline(owner, images[1], png_of(half))
    [entry] = site_figures(owner, VERSION)
    assert entry.overall.dice["enough"] and entry.overall.dice["films"] == 2
    assert entry.overall.dice["mean"] == pytest.approx((1.0 + 2 / 3) / 2)
    body = login(owner).get(API).json()
    assert body["versions"][0]["dice_positive"]["mean"] == pytest.approx(5 / 6)


def png_bytes(side: int, shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (side, side), shade).save(buffer, format="PNG")
    return buffer.getvalue()


def png_of(mask) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(mask).save(buffer, format="PNG")
    return buffer.getvalue()


def test_drift_alarm_reaches_the_configured_addresses_by_email(
        drift_model, owner, settings, django_capture_on_commit_callbacks):
    from tests.support.alerts import SmtpSink
    from webapp.performance.notify import deliver

    smtp = SmtpSink().start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.DRIFT_ALERT_EMAILS = ["model-safety@example.org"]
    films = read_films(owner, [False] * 5, version=DRIFT)
    try:
        for image in films:
            with django_capture_on_commit_callbacks(execute=False):  # not queued: sent below
                review(owner, image, "present")
        from webapp.performance.drift import check_drift

        with django_capture_on_commit_callbacks(execute=False) as queued:
            assert check_drift(DRIFT).fires
        alarm = DriftAlarm.objects.get()
        assert len(queued) == 1  # one channel configured: e-mail (no webhook URL)
        assert deliver(alarm.pk, "email") == "delivered"
        assert deliver(alarm.pk, "email") == "skipped"
    finally:
        smtp.stop()
    [message] = smtp.messages
    assert message["to"] == ["model-safety@example.org"]
    assert message["email"]["Subject"] == f"Drift alarm: model {DRIFT}"
    text = message["email"].get_content()
    assert "over 5 confirmed positives" in text and "not a random sample" in text
    for image in films:
        assert str(image.case_id) not in message["raw"].decode()
