"""The API's shapes of a review (webapp.api.views.reviews): what a client sends, validated here
with the reasons of a 400, and what it reads back."""

from rest_framework import serializers

from .models import COMMENT_MAX_LENGTH, Review, TrueLabel, Verdict


class ReviewCreateSerializer(serializers.Serializer):
    verdict = serializers.ChoiceField(choices=Verdict.choices,
                                      help_text="Whether you agree with the model's result.")
    true_label = serializers.ChoiceField(choices=TrueLabel.choices,
                                         help_text="What the X-ray shows, in your reading.")
    comment = serializers.CharField(max_length=COMMENT_MAX_LENGTH, allow_blank=True, required=False,
                                    default="", trim_whitespace=True)


class ReviewSerializer(serializers.ModelSerializer):
    image = serializers.UUIDField(source="image_id")
    reviewer = serializers.CharField(source="reviewer.get_username")
    model_version = serializers.CharField(allow_blank=True,
                                          help_text="The model whose result was reviewed.")
    probability = serializers.FloatField(allow_null=True,
                                         help_text="The model's probability when reviewed.")
    positive = serializers.BooleanField(allow_null=True,
                                        help_text="The model's call when reviewed.")
    reviewed_at = serializers.DateTimeField(help_text="When this verdict was given (the latest).")
    created_at = serializers.DateTimeField(help_text="The reviewer's first review of this image.")

    class Meta:
        model = Review
        fields = ["id", "image", "reviewer", "verdict", "true_label", "comment", "model_version",
                  "probability", "positive", "reviewed_at", "created_at"]
        read_only_fields = fields
