"""Clinician review on the case page: the form's POST, who may review what, only finished
results, the audit row committed with the review, the partial the case page includes, the
worklist's "reviewed or not", and the admin's read-only list."""

import pytest
from django.contrib.messages import get_messages
from django.db import transaction
from django.template.loader import render_to_string
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.support.factories import CaseFactory
from tests.support.reviews import ReviewFactory
from tests.web.markup import parse
from webapp.audit.models import Action, AuditEvent
from webapp.cases.models import Case, Job, JobStatus
from webapp.reviews import services
from webapp.reviews.models import Review

pytestmark = pytest.mark.django_db


def review_url(image):
    return reverse("reviews:review", args=[image.case_id, image.pk])


def post_review(client, image, **fields):
    data = {"verdict": "disagree", "true_label": "absent", "comment": "Skin fold, not a rim.", **fields}
    return client.post(review_url(image), data)


def texts(response):
    """The messages the redirect carries (those of earlier requests are still unshown)."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_owner_reviews_a_finished_result(login, owner, done_case):
    image = done_case.images.get()
    response = post_review(login(owner), image)
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:detail", args=[done_case.pk]) + f"#image-{image.pk}"
    assert texts(response) == ["Your review was saved."]
    review = Review.objects.get()
    assert (review.image, review.reviewer, review.verdict, review.true_label) == (image, owner, "disagree", "absent")
    assert review.comment == "Skin fold, not a rim."
    # the model's output, as it was when reviewed
    assert (review.model_version, review.probability, review.positive) == ("stub-1", 0.9, True)
    event = AuditEvent.objects.get(action=Action.REVIEW)
    assert (event.user, event.object_type, event.object_id) == (owner, "caseimage", str(image.pk))
    assert event.client_address == "10.1.2.3"
    assert event.detail["verdict"] == "disagree" and event.detail["true_label"] == "absent"
    assert event.detail["comment_chars"] == len(review.comment) and "comment" not in event.detail


def test_a_second_review_replaces_the_first_and_the_audit_log_keeps_both(login, owner, done_case):
    image = done_case.images.get()
    client = login(owner)
    post_review(client, image)
    first = Review.objects.get()
    response = post_review(client, image, verdict="agree", true_label="present", comment="")
    assert texts(response)[-1] == "Your review was updated."
    review = Review.objects.get()
    assert review.pk == first.pk and (review.verdict, review.true_label) == ("agree", "present")
    assert review.created_at == first.created_at and review.reviewed_at > first.reviewed_at
    events = AuditEvent.objects.filter(action=Action.REVIEW).order_by("at", "id")
    assert [e.detail["verdict"] for e in events] == ["disagree", "agree"]
    assert events.last().detail["replaced"]["verdict"] == "disagree"


def test_a_stranger_gets_404_and_nothing_is_written(login, owner, other, done_case):
    image = done_case.images.get()
    assert post_review(login(other), image).status_code == 404
    assert not Review.objects.exists() and not AuditEvent.objects.filter(action=Action.REVIEW).exists()
    # an image id under another case of the owner is not found either
    second = CaseFactory(owner=owner)
    assert login(owner).post(reverse("reviews:review", args=[second.pk, image.pk]),
                             {"verdict": "agree", "true_label": "present"}).status_code == 404


@pytest.mark.parametrize("status", [JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED])
def test_a_result_that_is_not_done_cannot_be_reviewed(login, owner, status):
    image = CaseFactory(owner=owner).images.get()
    Job.objects.filter(image=image).update(status=status)
    response = post_review(login(owner), image)
    assert response.status_code == 302
    [message] = texts(response)
    assert "no result to review yet" in message and status in message
    assert not Review.objects.exists() and not AuditEvent.objects.filter(action=Action.REVIEW).exists()


def test_invalid_fields_are_refused_with_the_reason(login, owner, done_case):
    image = done_case.images.get()
    response = post_review(login(owner), image, verdict="maybe", comment="x" * 2001)
    [message] = texts(response)
    assert "Your verdict on the model's result" in message and "2000" in message
    assert not Review.objects.exists()
    assert login(owner).get(review_url(image)).status_code == 405


def test_the_form_needs_its_csrf_token(owner, done_case):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert post_review(client, done_case.images.get()).status_code == 403


def test_the_review_and_its_audit_row_commit_together(owner, done_case, monkeypatch):
    image = done_case.images.get()

    def broken(*args, **kwargs):
        raise RuntimeError("audit storage down")

    monkeypatch.setattr(services.audit, "record", broken)
    with transaction.atomic():  # as the request's own transaction (ATOMIC_REQUESTS)
        with pytest.raises(RuntimeError):
            services.record_review(owner, image, "agree", "present", "", None)
        assert not Review.objects.exists()  # rolled back with the audit row that failed


def render_partial(image, user):
    request = RequestFactory().get("/")
    request.user = user
    reviews = services.reviews_for_images([image])[image.pk]
    return parse(render_to_string("reviews/_review.html", {"image": image, "reviews": reviews},
                                  request=request))


def test_the_partial_shows_who_reviewed_when_and_fills_in_your_own_form(owner, administrator, done_case,
                                                                       make_user):
    image = done_case.images.select_related("job").get()
    ReviewFactory(reviewer=administrator, image=image, verdict="agree", true_label="present")
    own = ReviewFactory(reviewer=owner, image=image, verdict="disagree", true_label="absent",
                        comment="Skin fold <b>here</b>")
    page = render_partial(image, owner)
    entries = list(page.find_all("li", **{"data-role": "review-entry"}))
    assert [e.find_all("strong").__next__().text for e in entries] == ["owner", "administrator"]
    latest = entries[0]
    assert "Disagree with the result" in latest.text and "No pneumothorax" in latest.text
    assert next(latest.find_all("time")).attrs["datetime"] == own.reviewed_at.isoformat()
    assert "Skin fold <b>here</b>" in latest.text  # escaped, shown as text
    assert "pneumothorax suspected, probability 0.90 (model stub-1)" in latest.text
    form = next(page.find_all("form", **{"data-role": "review-form"}))
    assert "hidden" not in form.attrs and form.attrs["action"] == review_url(image)
    assert next(form.find_all("input", name="csrfmiddlewaretoken")).attrs["value"]
    checked = {i.attrs["name"]: i.attrs["value"] for i in form.find_all("input", checked=True)}
    assert checked == {"verdict": "disagree", "true_label": "absent"}
    assert next(form.find_all("textarea")).text.strip() == "Skin fold <b>here</b>"
    # every field has its label, with ids of this image's own
    labelled = {label.attrs.get("for") for label in form.find_all("label")}
    for field in [*form.find_all("input", type="radio"), *form.find_all("textarea")]:
        assert field.attrs["id"].startswith(f"review-{image.pk}-") and field.attrs["id"] in labelled
    assert {legend.text.strip() for legend in form.find_all("legend")} >= {
        "Your verdict on the model's result:", "What the X-ray shows:"}
    assert "Update your review" in form.text
    # each reader's form holds their own review; one who has not reviewed gets an empty form
    form = next(render_partial(image, administrator).find_all("form"))
    assert {i.attrs["value"] for i in form.find_all("input", checked=True)} == {"agree", "present"}
    form = next(render_partial(image, make_user("reader", role="admin")).find_all("form"))
    assert not list(form.find_all("input", checked=True)) and "Save review" in form.text


def test_the_partial_of_an_unfinished_result_hides_the_form(owner):
    image = CaseFactory(owner=owner).images.select_related("job").get()
    page = render_partial(image, owner)
    assert next(page.find_all(**{"data-role": "no-reviews"})).text == "Not reviewed yet."
    assert "hidden" in next(page.find_all("form")).attrs
    assert "hidden" not in next(page.find_all(**{"data-role": "review-pending"})).attrs
    assert "Save review" in page.text


def test_reviewed_or_not_for_the_worklist(owner, other):
    waiting = CaseFactory(owner=owner, done=True)
    reviewed = CaseFactory(owner=owner, done=True)
    ReviewFactory(reviewer=other, image=reviewed.images.get())
    failed = CaseFactory(owner=owner)
    Job.objects.filter(image__case=failed).update(status=JobStatus.FAILED)
    queued = CaseFactory(owner=owner)
    cases = Case.objects.all()
    assert set(services.filter_reviewed(cases, False)) == {waiting, queued}
    assert set(services.filter_reviewed(cases, True)) == {reviewed}


def test_admins_read_reviews_in_the_admin_and_cannot_edit_them(login, owner, administrator):
    review = ReviewFactory(reviewer=owner, comment="Apical rim")
    client = login(administrator)
    listing = client.get(reverse("admin:reviews_review_changelist"), {"q": str(review.image_id)})
    assert listing.status_code == 200 and str(review.image_id) in listing.content.decode()
    assert client.get(reverse("admin:reviews_review_changelist"),
                      {"verdict__exact": "disagree"}).context["cl"].result_count == 0
    page = client.get(reverse("admin:reviews_review_change", args=[review.pk]))
    assert page.status_code == 200 and "Apical rim" in page.content.decode()
    assert 'name="comment"' not in page.content.decode()  # read-only
    assert client.get(reverse("admin:reviews_review_add")).status_code == 403
    assert login(owner).get(reverse("admin:reviews_review_changelist")).status_code == 302
