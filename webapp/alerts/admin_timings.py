"""The two durations as columns of the alerts' admin list (``webapp.alerts.admin``): a mixin,
so that the delivery's admin class gains them with one base class and no code of its own."""

from django.contrib import admin

from . import timings


class AlertTimingsAdminMixin:
    def get_queryset(self, request):
        return timings.with_timings(super().get_queryset(request))

    @admin.display(description="Upload → delivery")
    def upload_to_delivery(self, alert):
        return timings.format_seconds(timings.upload_to_delivery_s(alert))

    @admin.display(description="Delivery → acknowledgement")
    def delivery_to_acknowledgement(self, alert):
        if alert.delivered_at is None:
            return "–"
        acknowledgement = timings.acknowledgement_of(alert.image)
        if acknowledgement is None:
            return "not yet"
        return timings.format_seconds(timings.delivery_to_acknowledgement_s(alert))

    TIMING_COLUMNS = ("upload_to_delivery", "delivery_to_acknowledgement")
