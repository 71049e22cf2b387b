"""Which projection a DICOM film is: the model was trained on frontal (PA/AP) chest radiographs
only, so a lateral, decubitus or oblique film, read as if it were frontal, gives a meaningless
answer ("No pneumothorax detected" included). Such films are refused: at upload (``uploads``),
and again in the worker (``pipeline``) for any that reached the queue another way.

The check reads ViewPosition (0018,5101), which ``ml.core.reading`` returns in ``XRay.metadata``.
PNG and JPEG files carry no header: they cannot be checked here."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ml.core.errors import NotChestRadiograph

# ViewPosition values (DICOM defined terms and what modalities write in practice, e.g.
# "XTABLE LATERAL", "AP LLD"), by the word that makes a film not frontal.
LATERAL = frozenset({"LL", "RL", "LAT", "LATERAL", "LLAT", "RLAT", "LTLAT", "RTLAT"})
DECUBITUS = frozenset({"LLD", "RLD", "DECUB", "DECUBITUS"})
OBLIQUE = frozenset({"LAO", "RAO", "LPO", "RPO", "LLO", "RLO", "OBL", "OBLIQUE"})


class NotFrontalView(NotChestRadiograph):
    """A DICOM whose header names a lateral, decubitus or oblique projection."""


def non_frontal_kind(view_position: str | None) -> str | None:
    """``"lateral"``, ``"lateral decubitus"`` or ``"oblique"`` when ``view_position`` names such
    a projection; ``None`` for PA, AP, anything else, or no value (nothing to go on)."""
    words = set(re.split(r"[\s_\-/\\,.]+", str(view_position or "").strip().upper())) - {""}
    if words & DECUBITUS:
        return "lateral decubitus"
    if words & LATERAL:
        return "lateral"
    if words & OBLIQUE:
        return "oblique"
    return None


def check_frontal(metadata: Mapping) -> None:
    """Raise NotFrontalView, with a reason a clinician can read, if the header says the film is
    not frontal."""
    view_position = str(metadata.get("ViewPosition") or "").strip()
    kind = non_frontal_kind(view_position)
    if kind is not None:
        raise NotFrontalView(
            f"This is a {kind} view (ViewPosition {view_position}): the model reads frontal "
            "PA/AP chest films only. Upload the PA or AP film of the study.")
