"""What every API view shares: pagination, and audit rows naming the API call.

Access: every object is looked up through ``webapp.cases.services.access`` (or
``webapp.api.batches``), so a stranger gets 404 for another user's case, image, file or batch,
through every endpoint. Every call that touches data writes an audit row inside the request's
transaction (ATOMIC_REQUESTS), as the pages do."""

from __future__ import annotations

from rest_framework.views import APIView

from webapp.api.pagination import CasePagination
from webapp.audit import services as audit


class ApiView(APIView):
    @property
    def paginator(self):
        if not hasattr(self, "_paginator"):
            self._paginator = CasePagination()
        return self._paginator

    def audit_detail(self, **detail) -> dict:
        return {"api": f"{self.request.method} {self.request.path}", **detail}

    def audit(self, action, obj=None, **detail):
        audit.record(self.request.user, action, obj, audit.client_address(self.request),
                     detail=self.audit_detail(**detail))
