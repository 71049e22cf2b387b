"""ReviewFactory: a clinician's review, recorded the way the case page records it, through
``webapp.reviews.services.record_review`` (audit row included). By default the reviewer reviews
the image of a new one-image case of theirs whose job has run (StubPredictor: 0.9, positive).

    ReviewFactory(reviewer=user)                               # agree, present
    ReviewFactory(reviewer=user, image=image, true_label="absent", verdict="disagree")
"""

from __future__ import annotations

import factory
from factory.django import DjangoModelFactory

from tests.support.factories import ImageFactory, UserFactory


class ReviewFactory(DjangoModelFactory):
    class Meta:
        model = "reviews.Review"

    reviewer = factory.SubFactory(UserFactory)
    image = factory.SubFactory(ImageFactory, owner=factory.SelfAttribute("..reviewer"),
                               case__done=True)
    verdict = "agree"
    true_label = "present"
    comment = ""
    client_address = "10.0.0.9"

    @classmethod
    def _create(cls, model_class, reviewer, image, verdict, true_label, comment, client_address):
        from webapp.reviews.services import record_review

        review, _ = record_review(reviewer, image, verdict, true_label, comment, client_address)
        return review
