"""/api/v1/cases/<case>/images/<image>/reviews/: the clinicians' reviews of one image's result,
and your own (a second POST replaces your earlier review; the audit log keeps what it said).
The same service as the case page's form (``webapp.reviews.services.record_review``)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status as http
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from webapp.api.errors import Conflict, errors
from webapp.api.views.base import ApiView
from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.services import access
from webapp.reviews.serializers import ReviewCreateSerializer, ReviewSerializer
from webapp.reviews.services import InvalidReview, NotReviewable, record_review, reviews_for_images


class ImageReviews(ApiView):
    @extend_schema(operation_id="image_reviews_list",
                   summary="The clinicians' reviews of one image, newest first",
                   responses={200: ReviewSerializer(many=True), **errors()})
    def get(self, request, case_id, image_id):
        image = access.get_visible_image(request.user, case_id, image_id)
        reviews = reviews_for_images([image])[image.pk]
        self.audit(Action.VIEW_IMAGE, image, kind="reviews", case=str(case_id))
        return Response(ReviewSerializer(reviews, many=True).data)

    @extend_schema(
        operation_id="image_reviews_create",
        summary="Review the image's result: agree or disagree, the true label, a comment",
        description="One review per clinician and image: posting again replaces yours (200). "
                    "Only a finished result can be reviewed (409 while queued or running, or "
                    "when the analysis failed). The model's output is stored with the review.",
        request=ReviewCreateSerializer,
        responses={201: ReviewSerializer,
                   200: OpenApiResponse(ReviewSerializer, description="Your earlier review, replaced"),
                   **errors(400, 409)},
    )
    def post(self, request, case_id, image_id):
        image = access.get_visible_image(request.user, case_id, image_id)
        form = ReviewCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            review, first = record_review(request.user, image,
                                          client_address=audit.client_address(request),
                                          **form.validated_data)
        except NotReviewable as exc:
            raise Conflict({"detail": exc.message}) from exc
        except InvalidReview as exc:
            raise ValidationError({"detail": exc.message}) from exc
        return Response(ReviewSerializer(review).data,
                        status=http.HTTP_201_CREATED if first else http.HTTP_200_OK)
