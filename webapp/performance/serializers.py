"""The performance report's shape, for drf-spectacular's schema (read-only)."""

from rest_framework import serializers


class ProportionSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True, help_text="successes / films; null with no films")
    low = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, lower bound")
    high = serializers.FloatField(allow_null=True, help_text="95% Wilson interval, upper bound")
    successes = serializers.IntegerField()
    films = serializers.IntegerField(help_text="The number of films behind the figure")


class CountsSerializer(serializers.Serializer):
    true_positives = serializers.IntegerField()
    false_positives = serializers.IntegerField()
    true_negatives = serializers.IntegerField()
    false_negatives = serializers.IntegerField()
    conflicting_labels = serializers.IntegerField(
        help_text="Films whose reviewers disagree on the label: left out of the figures")


class ReviewedShareSerializer(serializers.Serializer):
    reviewed = serializers.IntegerField(help_text="Finished films with a true label from a review")
    finished = serializers.IntegerField(help_text="Films this version read to a result")
    value = serializers.FloatField(allow_null=True)


class FiguresSerializer(serializers.Serializer):
    films = serializers.IntegerField(help_text="Reviewed films with an agreed true label")
    counts = CountsSerializer()
    sensitivity = ProportionSerializer()
    specificity = ProportionSerializer()
    ppv = ProportionSerializer()
    npv = ProportionSerializer()
    reviewed_share = ReviewedShareSerializer()


class MonthSerializer(FiguresSerializer):
    month = serializers.CharField(help_text="YYYY-MM of the films' upload")


class DiceSerializer(serializers.Serializer):
    films = serializers.IntegerField(help_text="Confirmed positives with a corrected outline")
    mean = serializers.FloatField(allow_null=True, help_text="null until enough outlines")
    enough = serializers.BooleanField()
    needed = serializers.IntegerField()


class HeldOutSerializer(serializers.Serializer):
    sensitivity = ProportionSerializer(required=False)
    specificity = ProportionSerializer(required=False)


class DriftCheckSerializer(serializers.Serializer):
    figure = serializers.CharField()
    status = serializers.CharField()
    fires = serializers.BooleanField()
    minimum_positives = serializers.IntegerField()
    local = ProportionSerializer()
    held_out = ProportionSerializer(allow_null=True)


class DriftAlarmSerializer(serializers.Serializer):
    fired_at = serializers.DateTimeField()
    active = serializers.BooleanField()


class VersionSerializer(FiguresSerializer):
    version = serializers.CharField()
    dice_positive = DiceSerializer()
    held_out = HeldOutSerializer()
    drift_check = DriftCheckSerializer()
    drift_alarm = DriftAlarmSerializer(allow_null=True)
    months = MonthSerializer(many=True)


class PerformanceSerializer(serializers.Serializer):
    scope = serializers.CharField()
    honesty = serializers.CharField()
    drift_rule = serializers.CharField()
    drift_minimum_positives = serializers.IntegerField()
    versions = VersionSerializer(many=True)
