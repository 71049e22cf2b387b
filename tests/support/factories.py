"""factory_boy factories for the product's data, as comic/grand-challenge.org has them
(UserFactory, TeamFactory, CaseFactory, ImageFactory, JobFactory). Cases are made the way an
upload makes them, through ``webapp.cases.services.submission.submit_case`` with real X-rays of
the shared subset: files in private storage, one queued job per image, sent to the broker on
commit, the case in the owner's (first, or chosen) team.

    UserFactory(username="owner")                 # a clinician; UserFactory(role="admin")
    TeamFactory(name="Ward 3", members=[a, b])    # a team; its members see each other's cases
    CaseFactory(owner=user, team=ward)            # in that team of the owner's (default: first)
    CaseFactory(owner=user, extension="png")      # one image, its job queued
    CaseFactory(owner=user, done=True)            # ... and run in-process with a StubPredictor
    CaseFactory(owner=user, predictor=StubPredictor(0.7, True))
    ImageFactory(owner=user).job                  # the image of a new one-image case
    JobFactory(owner=user)                        # the job of a new one-image case
"""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory, Password

from tests.support.data import subset_image
from tests.support.stubs import StubPredictor, Upload

PASSWORD = "correct-horse-battery-9"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = "accounts.User"

    username = factory.Sequence(lambda n: f"user-{n}")
    role = "clinician"
    password = Password(PASSWORD)


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = "accounts.Team"
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Ward {n}")

    @factory.post_generation
    def members(self, create, extracted, **kwargs):
        if create and extracted:
            self.members.add(*extracted)


class UploadFactory(factory.Factory):
    """An uploaded file with the content of the ``index``-th shared image of ``extension``."""

    class Meta:
        model = Upload

    class Params:
        extension = "dcm"
        index = 0
        source = factory.LazyAttribute(lambda o: subset_image(o.extension, o.index))

    name = factory.LazyAttribute(lambda o: o.source.name)
    data = factory.LazyAttribute(lambda o: o.source.read_bytes())


class CaseFactory(DjangoModelFactory):
    """A case of ``owner`` with ``uploads`` (one shared image of ``extension`` unless given);
    with a ``predictor`` (``done=True``: a StubPredictor) each job is then run in-process by the
    real pipeline service and must end done."""

    class Meta:
        model = "cases.Case"

    class Params:
        extension = "dcm"
        done = factory.Trait(predictor=factory.LazyFunction(StubPredictor))

    owner = factory.SubFactory(UserFactory)
    uploads = factory.LazyAttribute(lambda o: [UploadFactory(extension=o.extension)])
    client_address = "10.0.0.9"
    client_reference = None
    team = None  # the owner's choice among their teams; None: their first, or none
    predictor = None

    @classmethod
    def _create(cls, model_class, owner, uploads, client_address, client_reference=None,
                team=None, predictor=None):
        from django.db import transaction

        from webapp.cases.services.pipeline import analyse_job
        from webapp.cases.services.submission import submit_case

        if predictor is None:
            return submit_case(owner, uploads, client_address, client_reference, team=team)
        # One transaction: the jobs go to the queue when it commits, after the predictor has
        # finished them, so a real worker up in the session (tests/support/worker_fixtures.py)
        # finds them done and skips them. Sent at once, it could claim one first and answer
        # with the real model (the compare viewer's browser test failed so in CI).
        with transaction.atomic():
            case = submit_case(owner, uploads, client_address, client_reference, team=team)
            for image in case.images.all():
                assert analyse_job(image.job.pk, predictor) == "done"
        return case


class OneImageCaseFactory(DjangoModelFactory):
    """Something of a new one-image case of ``owner``; ``case__...`` reach CaseFactory (e.g.
    ``case__done=True``)."""

    class Meta:
        abstract = True

    class Params:
        owner = factory.SubFactory(UserFactory)
        extension = "dcm"

    case = factory.SubFactory(CaseFactory, owner=factory.SelfAttribute("..owner"),
                              extension=factory.SelfAttribute("..extension"))


class ImageFactory(OneImageCaseFactory):
    """The image of a new one-image case."""

    class Meta:
        model = "cases.CaseImage"

    @classmethod
    def _create(cls, model_class, case):
        return case.images.get()


class JobFactory(OneImageCaseFactory):
    """The job of a new one-image case, read after the case was made."""

    class Meta:
        model = "cases.Job"

    @classmethod
    def _create(cls, model_class, case):
        return case.images.get().job
