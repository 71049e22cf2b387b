"""The patient page (issue 22): every film of a case's patient that the viewer may see, in date
order, each with its call, and a small plot of size over time.

Who sees which film is ``access.visible_cases``'s answer and nobody else's: the films are that
queryset's cases with the same ``patient_key``, so a teammate sees the team's films of the
patient and not another team's, and a stranger, who cannot see the case the page is reached
through, gets a 404 before anything is listed.

The plot is an inline SVG drawn here, on the server: no script library, nothing fetched, and the
page's Content-Security-Policy (settings/_csp.py: no inline script or style) holds, since an
SVG's presentation attributes are no style."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from django.utils import timezone

from webapp.cases.models import Case, CaseImage, JobStatus
from webapp.cases.services import access

TRENDS = {  # Job.comparison["trend"] (services.comparison), in words
    "new": "new since the prior film",
    "larger": "larger than on the prior film",
    "smaller": "smaller than on the prior film",
    "unchanged": "unchanged from the prior film",
    "resolved": "resolved since the prior film",
}


@dataclass
class Film:
    """One film on the page: what the table shows and the plot draws."""

    image: CaseImage
    date: datetime.date
    dated_by: str  # "study" (the header's StudyDate) or "upload" (no StudyDate: PNG/JPEG)
    current: bool  # of the case the page was opened from
    status: str
    probability: float | None = None
    positive: bool | None = None
    review_first: bool | None = None
    area_percent: float | None = None
    rim_depth_mm: float | None = None
    trend: str | None = None
    trend_text: str = ""
    prior_date: str | None = None


def patient_films(user, case: Case) -> list[Film]:
    """The films of ``case``'s patient that ``user`` may see (``case`` itself must be one they
    may see: the view gets it from ``access.get_visible_case``), oldest first: by study date
    where the header has one, else by the upload's date; then by upload time. [] for a case
    without a patient."""
    if not case.patient_key:
        return []
    cases = access.visible_cases(user).filter(patient_key=case.patient_key)
    images = CaseImage.objects.filter(case__in=cases).select_related("case", "job")
    films = [_film(image, case) for image in images]
    films.sort(key=lambda f: (f.date, f.image.created_at, f.image.position))
    return films


def _film(image: CaseImage, current: Case) -> Film:
    job = getattr(image, "job", None)
    date = image.study_date or timezone.localdate(image.created_at)
    film = Film(image=image, date=date, dated_by="study" if image.study_date else "upload",
                current=image.case_id == current.pk, status=job.status if job else "")
    if job is None or job.status != JobStatus.DONE:
        return film
    findings = job.findings or {}
    film.probability, film.positive, film.review_first = job.probability, job.positive, job.review_first
    film.area_percent = 100 * job.area_fraction if job.area_fraction is not None else None
    film.rim_depth_mm = findings.get("rim_depth_mm")
    comparison = job.comparison or {}
    film.trend = comparison.get("trend") if comparison.get("trend") in TRENDS else None
    film.trend_text = TRENDS.get(film.trend, "")
    film.prior_date = comparison.get("prior_date")
    return film


# --- the plot ---------------------------------------------------------------------------------

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 56, 16, 40  # margins: axis labels on both sides, dates below


def size_plot(films: list[Film]) -> dict | None:
    """What the template draws: area % (left axis) and, where measured, rim depth mm (right
    axis) of every finished film against its date; None when no film is finished."""
    done = [f for f in films if f.status == JobStatus.DONE and f.area_percent is not None]
    if not done:
        return None
    first, last = done[0].date, done[-1].date
    span = max((last - first).days, 1)
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(date):
        if first == last:
            return LEFT + inner_w / 2
        return LEFT + inner_w * (date - first).days / span

    area_top = _nice_top(max(f.area_percent for f in done), minimum=1.0)
    rims = [f for f in done if f.rim_depth_mm is not None]
    rim_top = _nice_top(max((f.rim_depth_mm for f in rims), default=0.0), minimum=10.0)

    def y(value, top):
        return TOP + inner_h * (1 - value / top)

    def series(items, value, top, unit):
        dots = [{"x": round(x(f.date), 1), "y": round(y(value(f), top), 1),
                 "title": f"{f.date.isoformat()}: {value(f):.1f} {unit}"} for f in items]
        for dot in dots:  # a square's corner, for the rim depth's marks
            dot["corner_x"], dot["corner_y"] = round(dot["x"] - 4, 1), round(dot["y"] - 4, 1)
        return {"dots": dots, "points": " ".join(f"{d['x']},{d['y']}" for d in dots)}

    return {
        "width": WIDTH, "height": HEIGHT, "left": LEFT, "right": WIDTH - RIGHT,
        "top": TOP, "bottom": HEIGHT - BOTTOM, "label_y": HEIGHT - BOTTOM + 18,
        "area": series(done, lambda f: f.area_percent, area_top, "% of the image"),
        "rim": series(rims, lambda f: f.rim_depth_mm, rim_top, "mm rim depth") if rims else None,
        "area_ticks": [{"y": round(y(v, area_top), 1), "label": f"{v:g}%"}
                       for v in (0, area_top / 2, area_top)],
        "rim_ticks": [{"y": round(y(v, rim_top), 1), "label": f"{v:g} mm"}
                      for v in (0, rim_top / 2, rim_top)] if rims else [],
        "date_ticks": _date_ticks(sorted({f.date for f in done}), x),
        "description": _description(done, rims),
    }


TICK_SPACING = 90  # px between two date labels' centres: "28 Feb 2024" is about 75 px wide


def _date_ticks(dates: list[datetime.date], x) -> list[dict]:
    """A label under the first and the last film's date, and under those between that leave
    room: films days apart in a long follow-up would otherwise print their dates over each
    other (each point still has its date in its tooltip, and the table has them all)."""
    kept: list[datetime.date] = []
    for date in dates:
        if not kept or x(date) - x(kept[-1]) >= TICK_SPACING:
            kept.append(date)
        elif date == dates[-1] and len(kept) > 1:
            kept[-1] = date  # the last date matters more than the one before it
    return [{"x": round(x(d), 1), "label": d.strftime("%-d %b %Y")} for d in kept]


def _nice_top(value: float, minimum: float) -> float:
    """The axis's top: a round number at or above ``value`` (1, 2, 5 x 10^n), ``minimum`` at
    least, so that a tiny area does not fill the plot and read as a large one."""
    top = max(value, minimum)
    scale = 10 ** len(str(int(top))) / 10
    for step in (1, 2, 5, 10):
        if step * scale >= top:
            return step * scale
    return top


def _description(done: list[Film], rims: list[Film]) -> str:
    """The plot in words, for a screen reader (the table under it has every figure)."""
    words = (f"Area of the outlined pneumothorax on {len(done)} finished film"
             f"{'s' if len(done) != 1 else ''}, from {done[0].area_percent:.1f}% on "
             f"{done[0].date:%-d %b %Y} to {done[-1].area_percent:.1f}% on {done[-1].date:%-d %b %Y}")
    if rims:
        words += (f"; rim depth from {rims[0].rim_depth_mm:.0f} mm to "
                  f"{rims[-1].rim_depth_mm:.0f} mm")
    return words + "."
