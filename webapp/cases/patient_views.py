"""The patient page: reached through a case the viewer may see (``cases/<case>/patient/``), not
through the patient's key. A key in the address would be a lasting pseudonym of the patient in
browser histories, proxy logs and Referer headers, and would need an access rule of its own
(who may look a key up?); through a case, the case's access decides, and the films listed are
those ``access.visible_cases`` lets the viewer see (services.patient_page)."""

from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from webapp.audit import services as audit
from webapp.audit.models import Action
from webapp.cases.services import access, patient_page


@require_GET
def patient(request, case_id):
    case = access.get_visible_case(request.user, case_id)
    if not case.patient_key:
        raise Http404("This case is not linked to a patient.")
    films = patient_page.patient_films(request.user, case)
    # One row for the page, on the case it was opened from, naming every result it shows.
    audit.record_page_view(request, Action.VIEW_CASE, case, detail={
        "page": "patient",
        "images": [{"id": str(f.image.pk), "case": str(f.image.case_id),
                    "result": f.status == "done"} for f in films]})
    return render(request, "cases/patient.html", {
        "case": case, "films": films, "plot": patient_page.size_plot(films)})
