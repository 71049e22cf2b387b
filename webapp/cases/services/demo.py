"""The demo mode (issue 25): a demo clinician in a demo team, with a handful of real films of the
shared SIIM-ACR subset in their worklist, so that a newcomer sees a populated product in the first
minute (``manage.py seed_demo``, ``scripts/run --demo``).

The films go in through ``submission.submit_case``, the path of every upload: read and checked,
de-identified, stored, and their jobs sent to the broker on commit; the worker reads them as it
reads any film. Nothing here runs the model. Each film's case carries a client reference
(``demo-01`` ...), which is unique per owner: a second run finds the references taken and adds
nothing.

The films come from the patients held out of the model's training (ml/splits), never from those it
learned on, so that what the demo shows is what the model does on films it has not seen. Only
DICOMs are taken, positives and negatives alike: in the subset the format follows the label
(its README), and a demo of JPEG positives beside DICOM negatives would flatter the model."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction

from webapp.accounts.models import Role, Team, User
from webapp.cases.models import Case
from webapp.cases.services.submission import submit_case
from webapp.cases.services.uploads import DuplicateReference

USERNAME = "demo"
TEAM = "Demo ward"
# Published in the docs on purpose: the demo is for one machine (scripts/run listens on
# 127.0.0.1). The production settings refuse the demo unless forced, and then with a password
# of the operator's choosing (see ``demo_refused``).
DEFAULT_PASSWORD = "demo-triage-first-look"
POSITIVES, NEGATIVES = 4, 3
DATA_ENV = "DEMO_DATA_DIR"
HELD_OUT_PATIENTS = settings.BASE_DIR / "ml" / "splits" / "siim-acr-subset-validation-patients.txt"


def default_data_dir() -> Path:
    """``$DEMO_DATA_DIR``, else the shared subset next to the repository (where the tests find
    it too: tests/support/data.py)."""
    configured = os.environ.get(DATA_ENV, "").strip()
    if configured:
        return Path(configured)
    return (Path(settings.BASE_DIR) / ".." / "shared" / "data" / "siim-acr-subset").resolve()


@dataclass(frozen=True)
class Film:
    reference: str  # the case's client reference: demo-01, demo-02, ...
    path: Path
    positive: bool  # the experts' label (not shown to the user: the model's reading is the demo)


@dataclass
class Outcome:
    user: User
    user_created: bool
    films: list[Film] = field(default_factory=list)
    added: list[Case] = field(default_factory=list)
    already_there: int = 0


class DemoAccountTaken(Exception):
    """An account of the demo's name exists and is not a plain clinician: the demo does not put
    films (and a published password) into an administrator's account."""


class DemoDataMissing(Exception):
    """The shared subset is not where it was looked for; the message says where that was."""


def demo_refused(force: bool, password: str | None) -> str | None:
    """Why the demo must not be seeded under these settings, or None.

    The question is whether other machines reach this site, not DEBUG: scripts/run serves with
    DEBUG off too (webapp.settings.local), and the demo is for it. The production settings
    always set secure session cookies (an HTTPS site behind a proxy); the local and development
    settings never do. There a published password is a way in, so the demo needs ``--force``
    and a password of the operator's own."""
    if not getattr(settings, "SESSION_COOKIE_SECURE", False):
        return None
    if not force:
        return ("these are production settings (a site other machines reach): a demo account "
                "does not belong there; add --force --password ... to seed it anyway")
    if not password or password == DEFAULT_PASSWORD:
        return "with --force, choose the demo password (--password): the default one is published"
    return None


def choose_films(data_dir: Path, positives: int = POSITIVES, negatives: int = NEGATIVES) -> list[Film]:
    """The demo's films, the same ones on every run: DICOMs of held-out patients, one per
    patient; the positives with the largest pneumothoraces (what a first look should show
    outlined), the negatives first by image id. Positives and negatives alternate, so that the
    worklist's review-first ordering is visible. Raises DemoDataMissing."""
    labels = data_dir / "labels.csv"
    if not labels.is_file():
        raise DemoDataMissing(f"no shared SIIM-ACR subset at {data_dir} (set {DATA_ENV} to its folder)")
    held_out = set(HELD_OUT_PATIENTS.read_text().split())
    with labels.open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle)
                if r["patient_id"] in held_out and r["image"].endswith(".dcm")
                and (data_dir / r["image"]).is_file()]
    chosen = {True: [], False: []}
    patients: set[str] = set()
    ordered = sorted(rows, key=lambda r: (-int(r["mask_pixels"] or 0), r["image_id"]))
    for row in ordered:
        positive = row["has_pneumothorax"] == "1"
        wanted = positives if positive else negatives
        if row["patient_id"] in patients or len(chosen[positive]) >= wanted:
            continue
        chosen[positive].append(row)
        patients.add(row["patient_id"])
    mixed = [row for pair in _interleave(chosen[True], chosen[False]) for row in pair]
    return [Film(reference=f"demo-{number:02d}", path=data_dir / row["image"],
                 positive=row["has_pneumothorax"] == "1")
            for number, row in enumerate(mixed, start=1)]


def _interleave(first: list, second: list):
    for index in range(max(len(first), len(second))):
        yield [*first[index:index + 1], *second[index:index + 1]]


def demo_user(password: str | None = None) -> tuple[User, bool]:
    """The demo clinician, a member of the demo team; made if missing, with ``password`` (None:
    DEFAULT_PASSWORD). An existing one keeps its password unless another is given (setting the
    same one again would revoke its API tokens for nothing: accounts.models.User.save)."""
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=USERNAME,
                                                   defaults={"role": Role.CLINICIAN})
        if not created and (user.is_admin_role or user.is_staff):
            raise DemoAccountTaken(f"the account {USERNAME!r} exists and is an administrator; "
                                   "the demo leaves it alone (rename it to seed the demo)")
        if created or (password and not user.check_password(password)):
            user.set_password(password or DEFAULT_PASSWORD)
            user.save()
        team, _ = Team.objects.get_or_create(name=TEAM)
        team.members.add(user)
    return user, created


def seed(data_dir: Path, password: str | None = None) -> Outcome:
    """The demo user and their films' cases (their jobs queued on the broker); what is there
    already stays as it is. Raises DemoDataMissing and DemoAccountTaken before making anything,
    and what ``submit_case`` raises for a film it refuses (UploadRejected)."""
    films = choose_films(data_dir)
    user, created = demo_user(password)
    outcome = Outcome(user=user, user_created=created, films=films)
    for film in films:
        try:
            with film.path.open("rb") as handle:
                case = submit_case(user, [File(handle, name=film.path.name)], client_address=None,
                                   client_reference=film.reference)
        except DuplicateReference:
            outcome.already_there += 1
            continue
        outcome.added.append(case)
    return outcome
