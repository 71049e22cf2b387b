"""Which nodes may talk to the service: registration (the admin, ``manage.py add_dicom_node``)
and the check made when an association is requested."""

from __future__ import annotations

import socket

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from webapp.cases.services.teams import submission_team
from webapp.pacs.models import Direction, DicomNode

AE_TITLE_MAX = 16


def clean_ae_title(ae_title: str) -> str:
    """An AE title as PS3.5 allows it: 1-16 characters of the default repertoire, no backslash,
    no control characters; leading and trailing spaces are not significant."""
    title = (ae_title or "").strip()
    if not title or len(title) > AE_TITLE_MAX or "\\" in title \
            or any(not (0x20 <= ord(ch) < 0x7F) for ch in title):
        raise ValidationError(f"Not a valid AE title: {ae_title!r} (1-16 printable ASCII "
                              "characters, no backslash).")
    return title


def register_node(*, ae_title: str, host: str, port: int, owner: str, team: str | None = None,
                  direction: str = Direction.BOTH, name: str = "") -> tuple[DicomNode, bool]:
    """Create or update the node (AE title, host); returns it and whether it was created.
    ``owner``: a username; ``team``: one of the owner's teams (name or id), or None for the
    owner's first team at each submission."""
    title = clean_ae_title(ae_title)
    if not 0 < int(port) < 65536:
        raise ValidationError(f"Not a port: {port}.")
    if direction not in Direction.values:
        raise ValidationError(f"Direction is one of {', '.join(Direction.values)}.")
    user = get_user_model().objects.filter(username=owner).first()
    if user is None:
        raise ValidationError(f"No user named {owner!r}.")
    chosen = submission_team(user, team) if team else None  # TeamRefused if not theirs
    return DicomNode.objects.update_or_create(
        ae_title=title, host=host.strip(),
        defaults={"port": int(port), "owner": user, "team": chosen, "direction": direction,
                  "name": name, "enabled": True})


def host_addresses(host: str) -> set[str]:
    """The addresses ``host`` stands for (itself if it is one)."""
    try:
        return {info[4][0] for info in socket.getaddrinfo(host, None)} | {host}
    except OSError:  # a name that does not resolve matches nothing but itself
        return {host}


def sending_node(calling_ae_title: str, address: str) -> DicomNode | None:
    """The enabled node that may send from ``address`` as ``calling_ae_title``, or None."""
    title = (calling_ae_title or "").strip()
    for node in DicomNode.objects.filter(ae_title=title, enabled=True).select_related(
            "owner", "team"):
        if node.sends and address in host_addresses(node.host):
            return node
    return None
