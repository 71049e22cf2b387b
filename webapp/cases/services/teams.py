"""Which team a new case belongs to. The issue's rule is "a case belongs to its uploader's team":
a user in one team needs to say nothing; a user in several may name one of them (the upload
page's choice, the API's ``team`` field); naming any other team is refused. Every interface
resolves the choice here, through ``submission.submit_case``, so they all agree."""

from __future__ import annotations

from webapp.accounts.models import Team
from webapp.cases.services.uploads import UploadRejected

# Ids are PostgreSQL bigints; a longer run of digits can only be a name (and must not reach SQL).
MAX_ID_DIGITS = 18


class TeamRefused(UploadRejected):
    """The team asked for is not one of the uploader's. The message is the same whether or not
    such a team exists, so that it tells a stranger nothing about other teams."""

    def __init__(self, choice, own_teams: list[str]):
        yours = f"yours: {', '.join(own_teams)}" if own_teams else "you belong to none"
        super().__init__([f"Not one of your teams: {str(choice)!r} ({yours})."])


def user_teams(user):
    """The user's teams, by name (the first is their default)."""
    return Team.objects.filter(members=user).order_by("name")


def submission_team(user, choice=None) -> Team | None:
    """The team of a case that ``user`` submits. ``choice``: a Team, a team's id or its exact
    name, which must be one of the user's teams (an id is tried before a name); None or "": the
    user's first team by name, or None if they belong to none. Raises TeamRefused."""
    teams = user_teams(user)
    if choice is None or choice == "":
        return teams.first()
    text = str(choice.pk if isinstance(choice, Team) else choice).strip()
    team = None
    if text.isascii() and text.isdigit() and len(text) <= MAX_ID_DIGITS:
        team = teams.filter(pk=int(text)).first()
    team = team or teams.filter(name=text).first()
    if team is None:
        raise TeamRefused(text, [t.name for t in teams])
    return team
