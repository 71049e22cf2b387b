"""This site's figures: the model's call on each reviewed film against the true label its
reviewers gave, per model version and per month.

What counts, and why:
- A film counts for a model version when a review that gives a true label ("present" or
  "absent"; "uncertain" says nothing) was given on that version's result. The call is the one
  the review snapshots (``Review.positive``, ``Review.model_version``): what the clinician
  judged, not what a re-run job says today.
- Several reviewers of one film: their labels must agree. A film whose reviewers disagree
  ("present" against "absent") has no reference standard, so it is set aside and counted
  (``conflicts``), never decided by whoever reviewed last: the latest word is the right rule for
  one reader changing their mind (``webapp.reviews``), not for settling two readers.
- The month is that of the film's upload: the figures of a month are those of the films the
  site took that month, however late they were reviewed.
- Scope: ``user`` None is the whole site (the drift alarm); otherwise the films the user may see
  (``access.visible_cases``): an administrator's is the whole site, a clinician's their own and
  their teams' films.

Reviews are not a random sample: clinicians review what worries them. The figures come with the
share of finished films that were reviewed, and the pages say so in words.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Exists, OuterRef, Q
from django.db.models.functions import TruncMonth
from django.utils import timezone

from webapp.cases.models import CaseImage, Job, JobStatus, ModelVersion
from webapp.cases.services.access import visible_cases
from webapp.reviews.models import Review, TrueLabel

from .outlines import dice_on_positives
from .proportions import Proportion

OUTCOMES = ("tp", "fp", "tn", "fn")
OUTCOME_NAMES = {"tp": "true positive", "fp": "false positive", "tn": "true negative",
                 "fn": "false negative", "conflict": "reviewers disagree"}
OUTCOME_TITLES = {"tp": "true positives (found)", "fp": "false positives (over-called)",
                  "tn": "true negatives", "fn": "false negatives (missed)",
                  "conflict": "films whose reviewers disagree"}
HONESTY = ("Reviews are not a random sample: clinicians review the films that worry them, so "
           "these figures describe the reviewed films, not every film the model read.")


@dataclass(frozen=True)
class FilmOutcome:
    """One reviewed film as one model version read it."""

    image_id: object
    case_id: object
    version: str
    month: str  # YYYY-MM of the upload, in the site's time zone
    outcome: str  # tp, fp, tn, fn, or "conflict" (reviewers disagree on the label)
    uploaded_at: object


@dataclass
class Figures:
    """Counts of one group of films (a version, or a version's month) and what follows."""

    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    conflicts: int = 0
    finished: int = 0  # films this version read that finished (in scope)
    reviewed: int = 0  # of those, films with a true label from a review
    dice: dict = field(default_factory=dict)

    def add(self, outcome: str) -> None:
        if outcome == "conflict":
            self.conflicts += 1
        else:
            setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def films(self) -> int:
        return self.tp + self.fp + self.tn + self.fn

    @property
    def sensitivity(self) -> Proportion:
        return Proportion(self.tp, self.tp + self.fn)

    @property
    def specificity(self) -> Proportion:
        return Proportion(self.tn, self.tn + self.fp)

    @property
    def ppv(self) -> Proportion:
        return Proportion(self.tp, self.tp + self.fp)

    @property
    def npv(self) -> Proportion:
        return Proportion(self.tn, self.tn + self.fn)

    @property
    def reviewed_share(self) -> Proportion:
        return Proportion(self.reviewed, self.finished)

    def as_dict(self) -> dict:
        return {
            "films": self.films,
            "counts": {"true_positives": self.tp, "false_positives": self.fp,
                       "true_negatives": self.tn, "false_negatives": self.fn,
                       "conflicting_labels": self.conflicts},
            "sensitivity": self.sensitivity.as_dict(), "specificity": self.specificity.as_dict(),
            "ppv": self.ppv.as_dict(), "npv": self.npv.as_dict(),
            "reviewed_share": {"reviewed": self.reviewed, "finished": self.finished,
                               "value": self.reviewed_share.value},
        }


@dataclass
class VersionFigures:
    version: str
    overall: Figures
    months: dict[str, Figures]  # "YYYY-MM" -> that month's figures, newest first
    held_out: dict  # the model card's sensitivity and specificity (ModelVersion.test_figures)


def month_of(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m")


def _films_in_scope(user):
    images = CaseImage.objects.all()
    return images if user is None else images.filter(case__in=visible_cases(user))


def film_outcomes(user=None, version: str | None = None) -> list[FilmOutcome]:
    """Every (reviewed film, model version) pair in scope, with its outcome."""
    definite = (TrueLabel.PRESENT, TrueLabel.ABSENT)
    films = _films_in_scope(user)
    if version is not None:  # the films this version's result was reviewed on, all their reviews
        films = films.filter(pk__in=Review.objects.filter(model_version=version,
                                                          true_label__in=definite).values("image"))
    reviews = (Review.objects.filter(image__in=films, true_label__in=definite)
               .order_by("reviewed_at", "pk")
               .values("image_id", "image__case_id", "image__created_at", "model_version",
                       "positive", "true_label"))
    labels: dict = defaultdict(set)  # image -> the labels its reviewers gave (any version)
    calls: dict = {}  # (image, version) -> the call, the latest review's snapshot
    uploaded: dict = {}
    for review in reviews:
        labels[review["image_id"]].add(review["true_label"])
        uploaded[review["image_id"]] = (review["image__case_id"], review["image__created_at"])
        if review["positive"] is not None and review["model_version"]:
            calls[(review["image_id"], review["model_version"])] = review["positive"]
    found = []
    for (image_id, film_version), positive in calls.items():
        if version is not None and film_version != version:
            continue
        given = labels[image_id]
        if len(given) > 1:
            outcome = "conflict"
        else:
            present = TrueLabel.PRESENT in given
            outcome = ("t" if positive == present else "f") + ("p" if positive else "n")
        case_id, uploaded_at = uploaded[image_id]
        found.append(FilmOutcome(image_id, case_id, film_version, month_of(uploaded_at), outcome,
                                 uploaded_at))
    return found


def _finished_and_reviewed(user, versions) -> dict:
    """{(version, month or None): [finished, reviewed]}: films each version read to the end
    (the job's version now), and how many of them a review gave a true label."""
    labelled = Review.objects.filter(image=OuterRef("image"),
                                     true_label__in=(TrueLabel.PRESENT, TrueLabel.ABSENT))
    # Counted by the database, by version and month (in the site's time zone, as month_of).
    rows = (Job.objects.filter(status=JobStatus.DONE, model_version__in=list(versions),
                               image__in=_films_in_scope(user))
            .annotate(labelled=Exists(labelled), month=TruncMonth("image__created_at"))
            .values("model_version", "month")
            .annotate(finished=Count("pk"), reviewed=Count("pk", filter=Q(labelled=True))))
    counts: dict = defaultdict(lambda: [0, 0])
    for row in rows:
        for key in ((row["model_version"], None), (row["model_version"], month_of(row["month"]))):
            counts[key][0] += row["finished"]
            counts[key][1] += row["reviewed"]
    return counts


def held_out_figures(test_figures: dict | None) -> dict:
    """The model card's sensitivity and specificity as Proportions, from the counts stored in
    ``ModelVersion.test_figures`` (the file's held-out test half). The file stores no interval
    for them (its ci95 are bootstrap intervals of AUC and Dice), so theirs is computed here the
    same way as the site's: the comparison is like with like."""
    f = test_figures or {}
    held = {}
    try:
        if f.get("positives"):
            held["sensitivity"] = Proportion(int(f["true_positives"]), int(f["positives"]))
        if f.get("negatives"):
            held["specificity"] = Proportion(int(f["negatives"]) - int(f["false_positives"]),
                                             int(f["negatives"]))
    except (KeyError, TypeError, ValueError):  # a file evaluated without counts: nothing to compare
        return {}
    return held


def site_figures(user=None, version: str | None = None) -> list[VersionFigures]:
    """The figures per model version (newest model first), each with its months."""
    outcomes = film_outcomes(user, version)
    known = {m.version: m for m in ModelVersion.objects.all()}
    versions = [version] if version is not None else list(dict.fromkeys(
        [*known, *sorted({o.version for o in outcomes})]))
    by_version = {v: VersionFigures(v, Figures(), {}, held_out_figures(
        getattr(known.get(v), "test_figures", None))) for v in versions}
    for outcome in outcomes:
        entry = by_version[outcome.version]
        entry.overall.add(outcome.outcome)
        entry.months.setdefault(outcome.month, Figures()).add(outcome.outcome)
    for (v, month), (finished, reviewed) in _finished_and_reviewed(user, versions).items():
        entry = by_version[v]
        figures = entry.overall if month is None else entry.months.setdefault(month, Figures())
        figures.finished, figures.reviewed = finished, reviewed
    positives = defaultdict(list)
    for outcome in outcomes:
        if outcome.outcome in ("tp", "fn"):
            positives[outcome.version].append(outcome)
    for entry in by_version.values():
        entry.months = dict(sorted(entry.months.items(), reverse=True))
        entry.overall.dice = dice_on_positives(positives[entry.version], entry.version)
    return list(by_version.values())


def sensitivity_and_held_out(version: str) -> tuple[Proportion, Proportion | None]:
    """What the drift rule needs, on the whole site, and no more (it runs after every review):
    the site's sensitivity for ``version`` and the model card's."""
    figures = Figures()
    for outcome in film_outcomes(None, version):
        figures.add(outcome.outcome)
    model = ModelVersion.objects.filter(version=version).first()
    return figures.sensitivity, held_out_figures(model.test_figures if model else None).get("sensitivity")


def films_behind(user, version: str, outcome: str | None = None, month: str | None = None):
    """The films behind a figure, in scope: for the page that lists them."""
    return sorted((o for o in film_outcomes(user, version)
                   if (outcome is None or o.outcome == outcome)
                   and (month is None or o.month == month)),
                  key=lambda o: o.uploaded_at, reverse=True)


