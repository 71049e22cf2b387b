"""Names that people and clients give things (a case's reference, a batch's label): one check
for every interface, so that the upload page and the REST API refuse the same text.

Refused, not stripped: control characters (C0 such as ESC, BEL, line breaks and tabs; DEL; C1)
and the invisible bidirectional-text controls (U+202A-U+202E embeddings and overrides,
U+2066-U+2069 isolates, U+200E/U+200F marks, U+061C). A reference is the client's own key: it
is unique among a user's cases and clients look cases up by it, so silently changing it would
break their look-ups; and a direction override makes a reference read differently on screen
than it is stored ("Trojan Source"), which a worklist must never show. The sender is told which
character, so that it can be fixed at the source.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _is_control(ch: str) -> bool:
    code = ord(ch)
    return code < 0x20 or 0x7F <= code <= 0x9F


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot name something, for a person; None when it can."""
    for ch in value:
        if _is_control(ch):
            return (f"control characters (line breaks, tabs, escape codes) are not allowed; "
                    f"found U+{ord(ch):04X}.")
        if ch in BIDI_CONTROLS:
            return (f"invisible text-direction control characters are not allowed (they make "
                    f"the text read differently than it is stored); found U+{ord(ch):04X}.")
    return None


def validate_name_text(value: str) -> None:
    """A validator for form and serializer fields alike (DRF runs Django's validators)."""
    problem = text_problem(value)
    if problem is not None:
        raise ValidationError(problem, code="invalid_characters")
