"""This site's films, as ``manage.py export_feedback --out-dir DIR`` exports them, and how
``ml.train --feedback`` and ``ml.evaluate --feedback`` divide them.

The layout is described in ``docs/develop/feedback-export.md``: ``labels.csv`` (the subset's
columns plus ``has_mask``), ``images/``, ``masks/`` and ``manifest.json``.

**The split is by patient and by a hash of the patient key**, not drawn at random: a patient is
held out when ``sha256("site-holdout:" + key)``, read as a fraction of 2^64, falls below the
hold-out share. Training and evaluation therefore agree without passing lists around, and,
unlike a shuffled split, a patient never changes side when the export grows: films of a
patient held out last month are still held out after next month's export, so a fine-tune of a
fine-tune is never scored on films it learned from. The share is about, not exactly, the one
asked for (each patient is a coin toss), which matters only for a handful of patients.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import torch

from ml.training.datasets import Sample, load_subset
from ml.training.training_data import epoch_indices

EXPORT_FORMAT = "pneumothorax-feedback"
DEFAULT_HOLDOUT = 0.2
SALT = "site-holdout:"  # changing it would move patients across the split: never change it


class FeedbackError(ValueError):
    """A folder that is not a feedback export ``ml`` can read; the message says why."""


def load_site_films(root: str | Path) -> tuple[list[Sample], dict]:
    """The films of an export folder and its manifest. ``FeedbackError`` where the folder is
    not an export (no manifest of the right format, no labels.csv, a film or mask missing)."""
    root = Path(root)
    manifest_path = root / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FeedbackError(f"{root} is not a feedback export: no manifest.json "
                            "(write one with manage.py export_feedback --out-dir)") from None
    except (OSError, ValueError) as exc:
        raise FeedbackError(f"{manifest_path} is unreadable: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
        raise FeedbackError(f"{manifest_path} is not a {EXPORT_FORMAT} manifest")
    try:
        samples = load_subset(root)
    except (OSError, KeyError, ValueError) as exc:
        raise FeedbackError(f"{root / 'labels.csv'} is unreadable: {exc}") from None
    for sample in samples:
        if not sample.image_path.is_file() or (sample.has_mask and not sample.mask_path.is_file()):
            raise FeedbackError(f"film {sample.image_id} of {root} lacks its image or mask file")
    return samples, manifest


def is_held_out(patient_key: str, holdout: float) -> bool:
    """Whether this patient's films are kept for evaluation (never trained on)."""
    digest = hashlib.sha256((SALT + patient_key).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < holdout


def split_site_films(samples: list[Sample], holdout: float = DEFAULT_HOLDOUT,
                     ) -> tuple[list[Sample], list[Sample]]:
    """(films to train on, held-out films), disjoint by patient, deterministic."""
    if not 0.0 <= holdout < 1.0:
        raise FeedbackError(f"the site hold-out share must be in [0, 1), not {holdout}")
    held = {s.patient_id for s in samples if is_held_out(s.patient_id, holdout)}
    return ([s for s in samples if s.patient_id not in held], [s for s in samples if s.patient_id in held])


def mixed_epoch_size(n_site: int, fraction: float) -> int:
    """Samples in one fine-tuning epoch: every site film about once, the rest shared films."""
    return math.ceil(n_site / fraction)


def mixed_epoch_indices(shared_labels: list[bool], n_site: int, fraction: float,
                        positive_fraction: float, seed: int) -> list[int]:
    """One fine-tuning epoch's indices into ``ConcatDataset([shared, site])``: exactly
    ``round(size * fraction)`` site films (drawn uniformly, with replacement) and the rest shared
    films (drawn as ``epoch_indices`` draws them, ``positive_fraction`` positives), shuffled
    together so that every batch mixes both. Replaying the shared data is what keeps a fine-tune
    on a few site films from forgetting the rest. Same seed, same list, on every process."""
    if not 0.0 < fraction < 1.0:
        raise FeedbackError(f"--feedback-fraction must be in (0, 1), not {fraction}")
    size = mixed_epoch_size(n_site, fraction)
    n_from_site = round(size * fraction)
    generator = torch.Generator().manual_seed(seed)
    site = (torch.randint(n_site, (n_from_site,), generator=generator) + len(shared_labels)).tolist()
    shared = epoch_indices(shared_labels, positive_fraction, seed, count=size - n_from_site)
    combined = shared + site
    order = torch.randperm(len(combined), generator=generator).tolist()
    return [combined[i] for i in order]
