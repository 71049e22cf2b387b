"""Links from audit rows to the pages of what they name. The audit app sits below the apps whose
objects it records, so it imports none of them: each app registers, for its object types, a
function that turns ids into URLs for one user, leaving out what that user may not see and what
no longer exists (a deleted case keeps its trail, shown by id without a link)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable

from .models import AuditEvent

# object_type -> f(user, ids) -> {id: url} for the ids the user may open.
Resolver = Callable[[object, set[str]], dict[str, str]]
_resolvers: dict[str, Resolver] = {}


def register(object_type: str, resolver: Resolver) -> None:
    _resolvers[object_type] = resolver


def attach_links(user, events: Iterable[AuditEvent]) -> list[AuditEvent]:
    """The events, each with ``link`` (a URL, or None): one lookup per object type on the page."""
    events = list(events)
    wanted: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.object_type in _resolvers and event.object_id:
            wanted[event.object_type].add(event.object_id)
    found = {kind: _resolvers[kind](user, ids) for kind, ids in wanted.items()}
    for event in events:
        event.link = found.get(event.object_type, {}).get(event.object_id)
    return events
