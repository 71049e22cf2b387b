"""Acknowledging a review-first film (issue 22): from the case page and from the worklist,
"Seen by ..." once acknowledged, one audit row, once per film, who may (owner, teammate, admin;
a stranger gets 404), nothing to acknowledge on a film that is not review first; and the alert
timings for administrators: the service's medians and 90th percentiles against figures computed
by hand, and the page, which clinicians may not open."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import pytest
from django.contrib.messages import get_messages
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from tests.support.factories import CaseFactory, TeamFactory, UploadFactory
from tests.support.stubs import StubPredictor
from tests.web.markup import parse
from webapp.alerts import timings
from webapp.alerts.acknowledgements import seen_by
from webapp.alerts.models import Acknowledgement, Alert, AlertStatus, Channel
from webapp.audit.models import Action, AuditEvent

pytestmark = pytest.mark.django_db


def ack_url(image):
    return reverse("alerts:acknowledge", args=[image.case_id, image.pk])


def case_page(image):
    return reverse("cases:detail", args=[image.case_id])


@pytest.fixture
def ward(owner, make_user):
    """The owner's team, with a teammate."""
    mate = make_user("mate")
    mate.first_name, mate.last_name = "Dr Ada", "Lovelace"
    mate.save()
    TeamFactory(name="Ward 3", members=[owner, mate])
    return mate


@pytest.fixture
def flagged(owner, ward):
    """A review-first film of the owner's, in the ward's case list."""
    return CaseFactory(owner=owner, predictor=StubPredictor(0.9, True)).images.get()


@pytest.fixture
def not_flagged(owner):
    return CaseFactory(owner=owner, predictor=StubPredictor(0.05, False)).images.get()


def ack_forms(page: bytes | str):
    """Each film's acknowledgement block on a page (alerts/_acknowledgement.html)."""
    return [e for e in parse(page).iter() if e.attrs.get("data-role") == "acknowledgement"]


def test_acknowledged_from_the_case_page_with_seen_by_and_one_audit_row(login, owner, flagged):
    client = login(owner)
    page = client.get(case_page(flagged)).content
    [block] = ack_forms(page)
    [form] = [e for e in block.iter() if e.tag == "form"]
    assert form.attrs["action"] == ack_url(flagged)
    assert [e.attrs["name"] for e in form.iter() if e.tag == "input"] == ["csrfmiddlewaretoken", "next"]
    back = [e.attrs["value"] for e in form.iter() if e.attrs.get("name") == "next"][0]
    assert back == case_page(flagged) + f"#image-{flagged.pk}"

    response = client.post(ack_url(flagged), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    acknowledgement = Acknowledgement.objects.get()
    assert (acknowledgement.image, acknowledgement.by) == (flagged, owner)
    local = timezone.localtime(acknowledgement.at)
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        f"Acknowledged. Seen by owner at {local:%H:%M}."]
    event = AuditEvent.objects.get(action=Action.ALERT_ACKNOWLEDGED)
    assert (event.user, event.object_type, event.object_id) == (owner, "caseimage", str(flagged.pk))
    assert event.client_address == "10.1.2.3" and event.detail == {"case": str(flagged.case_id)}

    [block] = ack_forms(client.get(case_page(flagged)).content)
    assert block.attrs["data-acknowledged"] == "true"
    assert block.text.strip() == f"Seen by owner at {local:%H:%M}"
    assert not [e for e in block.iter() if e.tag in ("form", "button")]


def test_acknowledged_from_the_worklist_which_then_shows_it_in_its_rows_and_json(login, owner, ward, flagged):
    teammate = login(ward)
    page = teammate.get(reverse("cases:list"), {"order": "newest"}).content
    [block] = ack_forms(page)
    [button] = [e for e in block.iter() if e.tag == "button"]
    # A button of the page's one form (its CSRF token is not in the rows the page polls).
    assert (button.attrs["form"], button.attrs["formaction"]) == ("acknowledge-form", ack_url(flagged))
    [form] = parse(page).find_all("form", id="acknowledge-form")
    [back] = [e.attrs["value"] for e in form.iter() if e.attrs.get("name") == "next"]
    assert back == reverse("cases:list") + "?order=newest"
    rows_html = teammate.get(reverse("cases:worklist_json"), {"order": "newest"}).json()["html"]
    assert "csrfmiddlewaretoken" not in rows_html

    response = teammate.post(ack_url(flagged), {"next": back})
    assert response.status_code == 302 and response["Location"] == back
    assert Acknowledgement.objects.get().by == ward

    payload = teammate.get(reverse("cases:worklist_json"), {"order": "newest"}).json()
    [alert] = payload["rows"][0]["acknowledgements"]
    at = timezone.localtime(Acknowledgement.objects.get().at)
    assert alert["acknowledged"] is True and alert["image_id"] == str(flagged.pk)
    assert alert["seen_by"] == f"Seen by Dr Ada Lovelace at {at:%H:%M}"  # the full name
    [block] = ack_forms(payload["html"])
    assert block.text.strip() == alert["seen_by"]
    # The owner's worklist says so too.
    [block] = ack_forms(login(owner).get(reverse("cases:list")).content)
    assert block.attrs["data-acknowledged"] == "true"


def test_a_second_acknowledgement_keeps_the_first(login, owner, ward, flagged):
    login(owner).post(ack_url(flagged))
    first = Acknowledgement.objects.get()
    response = login(ward).post(ack_url(flagged))
    assert response.status_code == 302
    assert response["Location"] == case_page(flagged) + f"#image-{flagged.pk}"  # no next: the case
    assert [str(m) for m in get_messages(response.wsgi_request)][-1].startswith(
        "Already acknowledged. Seen by owner at ")
    assert list(Acknowledgement.objects.values_list("pk", "by", "at")) == [(first.pk, owner.pk, first.at)]
    assert AuditEvent.objects.filter(action=Action.ALERT_ACKNOWLEDGED).count() == 1


def test_who_may_acknowledge(login, owner, ward, administrator, other, flagged, make_user):
    # A stranger neither sees the case nor learns that it exists.
    assert login(other).post(ack_url(flagged)).status_code == 404
    assert login(other).get(case_page(flagged)).status_code == 404
    assert not Acknowledgement.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.ALERT_ACKNOWLEDGED).exists()
    # An administrator may (and so may a teammate: test above).
    assert login(administrator).post(ack_url(flagged)).status_code == 302
    assert Acknowledgement.objects.get().by == administrator
    # The form is a POST with CSRF: a GET changes nothing, a POST without the token is refused.
    assert login(ward).get(ack_url(flagged)).status_code == 405
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(ward)
    Acknowledgement.objects.all().delete()
    assert strict.post(ack_url(flagged)).status_code == 403
    assert not Acknowledgement.objects.exists()


def test_a_film_that_is_not_review_first_has_nothing_to_acknowledge(login, owner, not_flagged, make_case):
    client = login(owner)
    assert ack_forms(client.get(case_page(not_flagged)).content) == []
    assert ack_forms(client.get(reverse("cases:list")).content) == []
    response = client.post(ack_url(not_flagged))
    assert response.status_code == 400
    assert b"not flagged review first" in response.content
    waiting = make_case(owner).images.get()  # queued: no result yet
    response = client.post(ack_url(waiting))
    assert response.status_code == 400 and b"no result yet" in response.content
    assert not Acknowledgement.objects.exists()
    assert not AuditEvent.objects.filter(action=Action.ALERT_ACKNOWLEDGED).exists()


def test_an_unsafe_next_comes_back_to_the_case_page(login, owner, flagged):
    response = login(owner).post(ack_url(flagged), {"next": "https://evil.example/phish"})
    assert response["Location"] == case_page(flagged) + f"#image-{flagged.pk}"


def test_cases_of_several_films_name_each_film(login, owner):
    case = CaseFactory(owner=owner, uploads=[UploadFactory(index=0), UploadFactory(index=1)],
                       predictor=StubPredictor(0.9, True))
    buttons = [e.text.strip() for e in parse(login(owner).get(reverse("cases:list")).content).iter()
               if e.attrs.get("data-role") == "acknowledge-button"]
    assert buttons == ["Acknowledge image 1", "Acknowledge image 2"]
    assert case.images.count() == 2


@override_settings(TIME_ZONE="Europe/Paris")
def test_seen_by_is_in_the_site_time_zone_with_the_date_when_not_today(owner, flagged, ward):
    acknowledgement = Acknowledgement.objects.create(image=flagged, by=ward)
    acknowledgement.at = datetime(2026, 12, 4, 9, 42, tzinfo=dt_timezone.utc)  # 10:42 in Paris
    same_day = datetime(2026, 12, 4, 20, 0, tzinfo=dt_timezone.utc)
    assert seen_by(acknowledgement, now=same_day) == "Seen by Dr Ada Lovelace at 10:42"
    assert seen_by(acknowledgement, now=same_day + timedelta(days=1)) == \
        "Seen by Dr Ada Lovelace at 10:42 on 4 Dec 2026"
    ward.first_name = ward.last_name = ""
    assert seen_by(acknowledgement, now=same_day) == "Seen by mate at 10:42"


# --- timings --------------------------------------------------------------------------------------

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=dt_timezone.utc)


def make_alert(image, channel, delivered_after_s, acknowledged_after_s=None, made_days_ago=1,
               status=AlertStatus.DELIVERED, now=NOW):
    """An alert of ``image`` made ``made_days_ago`` before ``now``, delivered that many seconds
    after the upload (None: not delivered), and the film acknowledged that many seconds after."""
    uploaded = now - timedelta(days=made_days_ago)
    type(image).objects.filter(pk=image.pk).update(created_at=uploaded)
    alert = Alert.objects.create(image=image, channel=channel, reason="positive", status=status)
    delivered = None if delivered_after_s is None else uploaded + timedelta(seconds=delivered_after_s)
    Alert.objects.filter(pk=alert.pk).update(created_at=uploaded + timedelta(seconds=1), delivered_at=delivered)
    if acknowledged_after_s is not None:
        acknowledgement, _ = Acknowledgement.objects.get_or_create(image=image, defaults={"by": image.case.owner})
        Acknowledgement.objects.filter(pk=acknowledgement.pk).update(
            at=delivered + timedelta(seconds=acknowledged_after_s))
    return alert


@pytest.fixture
def ten_films(owner):
    case = CaseFactory(owner=owner, uploads=[UploadFactory(index=n % 3, extension="png") for n in range(12)])
    return list(case.images.all())


def test_timings_median_and_p90_against_hand_computed_figures(ten_films):
    films = ten_films
    # Webhook: delivered 1..10 s after upload; acknowledged 60, 120, ..., 480 s after delivery
    # for the first eight films. Hand-computed (linear interpolation between closest ranks):
    # upload->delivery median (5+6)/2 = 5.5, p90 = 9 + 0.1 * (10 - 9) = 9.1;
    # delivery->ack n=8, median (240+300)/2 = 270, p90 position 0.9*7 = 6.3: 420 + 0.3*60 = 438.
    for n, image in enumerate(films[:10]):
        make_alert(image, Channel.WEBHOOK, n + 1, 60 * (n + 1) if n < 8 else None)
    # E-mail: 20, 40, 30 s (median 30, p90 at 0.9*2 = 1.8: 30 + 0.8*10 = 38), the last two
    # films' e-mails; one failed, one pending (not delivered: not in the durations).
    make_alert(films[0], Channel.EMAIL, 20)   # acknowledged 60 s after upload+1 s: before it
    make_alert(films[8], Channel.EMAIL, 40)
    make_alert(films[9], Channel.EMAIL, 30)
    make_alert(films[1], Channel.EMAIL, None, status=AlertStatus.FAILED)
    make_alert(films[2], Channel.EMAIL, None, status=AlertStatus.PENDING)
    # Older than 30 days: left out.
    make_alert(films[10], Channel.WEBHOOK, 5000, 5000, made_days_ago=31)

    summary = timings.summary(now=NOW)
    webhook, email, first = summary["rows"]
    assert summary["total"] == 15
    assert (webhook["alerts"], webhook["delivered"], webhook["pending"], webhook["failed"]) == (10, 10, 0, 0)
    assert webhook["upload_to_delivery"] == timings.Figures(10, pytest.approx(5.5), pytest.approx(9.1))
    assert webhook["delivery_to_acknowledgement"] == timings.Figures(8, pytest.approx(270), pytest.approx(438))
    assert webhook["unacknowledged"] == 2
    assert (email["alerts"], email["delivered"], email["pending"], email["failed"]) == (5, 3, 1, 1)
    assert email["upload_to_delivery"] == timings.Figures(3, pytest.approx(30), pytest.approx(38))
    # films[0] acknowledged 61 s after upload, its e-mail delivered at 20 s: 41 s; films 8 and 9
    # not acknowledged.
    assert email["delivery_to_acknowledgement"] == timings.Figures(1, pytest.approx(41), pytest.approx(41))
    # Per film, the first delivery whatever the channel: the webhook everywhere (1..10 s).
    assert first["alerts"] == 10
    assert first["upload_to_delivery"] == timings.Figures(10, pytest.approx(5.5), pytest.approx(9.1))


def test_acknowledged_before_the_alert_arrived_counts_as_zero(ten_films):
    make_alert(ten_films[0], Channel.WEBHOOK, 30, 60)
    Acknowledgement.objects.update(at=NOW - timedelta(days=1) + timedelta(seconds=5))
    alert = timings.with_timings(Alert.objects).get()
    assert timings.upload_to_delivery_s(alert) == 30.0
    assert timings.delivery_to_acknowledgement_s(alert) == 0.0


def test_percentile_edges():
    assert timings.percentile([], 0.9) is None
    assert timings.percentile([7.0], 0.9) == 7.0
    assert timings.percentile(list(range(1, 11)), 0.9) == pytest.approx(9.1)
    assert [timings.format_seconds(s) for s in (None, 4.24, 192, 7500)] == ["–", "4.2 s", "3 min 12 s", "2 h 05 min"]


def test_timings_page_is_for_administrators_only(login, owner, administrator, ten_films):
    make_alert(ten_films[0], Channel.WEBHOOK, 4, 90, now=timezone.now())
    url = reverse("alerts:timings")
    assert login(owner).get(url).status_code == 403
    response = login(administrator).get(url)
    assert response.status_code == 200
    rows = [e for e in parse(response.content).iter() if e.attrs.get("data-role") == "timings-row"]
    cells = {e.attrs["data-role"]: e.text for e in rows[0].iter() if e.tag == "td" and "data-role" in e.attrs}
    assert cells == {"upload-n": "1", "upload-median": "4.0 s", "upload-p90": "4.0 s",
                     "ack-n": "1", "ack-median": "1 min 30 s", "ack-p90": "1 min 30 s"}


def test_the_admin_list_of_alerts_shows_each_alert_s_two_durations(login, administrator, ten_films):
    make_alert(ten_films[0], Channel.WEBHOOK, 4, 90, now=timezone.now())
    make_alert(ten_films[1], Channel.WEBHOOK, 200, now=timezone.now())  # not acknowledged yet
    make_alert(ten_films[2], Channel.EMAIL, None, status=AlertStatus.FAILED, now=timezone.now())
    response = login(administrator).get(reverse("admin:alerts_alert_changelist"))
    assert response.status_code == 200
    rows = []
    for row in parse(response.content).find_all("tr"):
        cells = {e.attrs["class"].split()[0]: e.text.strip() for e in row.iter()
                 if e.tag in ("td", "th") and e.attrs.get("class", "").startswith("field-")}
        if cells:
            rows.append((cells["field-channel"], cells["field-status"],
                         cells["field-upload_to_delivery"], cells["field-delivery_to_acknowledgement"]))
    assert sorted(rows) == [("E-mail", "Failed", "–", "–"),
                            ("Webhook", "Delivered", "3 min 20 s", "not yet"),
                            ("Webhook", "Delivered", "4.0 s", "1 min 30 s")]


# --- in a real browser ------------------------------------------------------------------------------

@pytest.mark.e2e
@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_in_a_real_browser_the_worklist_button_acknowledges_and_the_row_says_who(live_server, make_user):
    """The worklist's button belongs to a form outside the polled rows (its ``form`` attribute):
    in Chromium it posts that form, with its CSRF token, to the film's address and comes back."""
    from tests.e2e.test_csp_browser import watched_page
    from tests.support.browser import PASSWORD, chromium, log_in

    clinician = make_user("dr-browser", password=PASSWORD)
    # The stub's call, review first (CaseFactory: a session's real worker never gets there first).
    image = CaseFactory(owner=clinician, predictor=StubPredictor(0.9, True)).images.get()
    with chromium() as browser:
        page = watched_page(browser)  # records CSP violations and script errors
        log_in(page, live_server.url)
        page.goto(live_server.url + reverse("cases:list") + "?order=newest")
        page.click(f"[data-image-id='{image.pk}'] [data-role=acknowledge-button]")
        page.wait_for_selector("[data-role=seen-by]")
        seen = page.inner_text("[data-role=seen-by]")
        url = page.url
        violations, errors = page.evaluate("window.__violations"), page.errors
    at = timezone.localtime(Acknowledgement.objects.get(image=image, by=clinician).at)
    assert seen == f"Seen by dr-browser at {at:%H:%M}"
    assert url == live_server.url + reverse("cases:list") + "?order=newest"
    assert violations == [] and errors == []
