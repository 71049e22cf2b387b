"""GET /api/v1/model/performance/: this site's figures per model version (and month), as the
model page shows them. Aggregates only: no film is named, so no audit row (as the page)."""

from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from webapp.api.errors import errors
from webapp.api.views.base import ApiView

from .report import performance_report
from .serializers import PerformanceSerializer


class ModelPerformance(ApiView):
    @extend_schema(
        operation_id="model_performance",
        summary="This site's figures on its reviewed films, per model version and month",
        description="Sensitivity, specificity, PPV and NPV with 95% Wilson intervals and the "
                    "number of films behind each, from reviews that give a true label. "
                    "Administrators get the whole site; a clinician their own and their teams' "
                    "films. Reviews are not a random sample: see reviewed_share.",
        responses={200: PerformanceSerializer, **errors()})
    def get(self, request):
        return Response(PerformanceSerializer(performance_report(request.user)).data)
