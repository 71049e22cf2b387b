"""The SIIM-ACR challenge metric and the clinical figures, in plain numpy.

The challenge scored the mean over images of the Dice coefficient, with Dice = 1 when both
the prediction and the truth are empty. That mean depends on the share of empty images, so
``challenge_score`` can re-weight to a chosen positive fraction (the challenge's was 22%).
"""

from __future__ import annotations

import numpy as np

CHALLENGE_POSITIVE_FRACTION = 0.22


def dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    prediction, truth = np.asarray(prediction) > 0, np.asarray(truth) > 0
    total = int(prediction.sum()) + int(truth.sum())
    if total == 0:
        return 1.0
    return 2.0 * int(np.logical_and(prediction, truth).sum()) / total


def challenge_score(dices, has_pneumothorax, positive_fraction: float | None = None) -> float:
    """Mean per-image Dice; at ``positive_fraction`` the two classes' means are re-weighted."""
    dices = np.asarray(dices, dtype=float)
    positive = np.asarray(has_pneumothorax, dtype=bool)
    if positive_fraction is None:
        return float(dices.mean())
    if positive.all() or not positive.any():
        raise ValueError("Re-weighting needs both positive and negative images.")
    return float(positive_fraction * dices[positive].mean()
                 + (1 - positive_fraction) * dices[~positive].mean())


def roc_curve(scores, labels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positive rates at each distinct score used as a threshold (>=)."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    distinct = np.r_[np.flatnonzero(np.diff(scores)), scores.size - 1]
    true_positives = np.cumsum(labels)[distinct]
    false_positives = (distinct + 1) - true_positives
    tpr = np.r_[0.0, true_positives / max(labels.sum(), 1)]
    fpr = np.r_[0.0, false_positives / max((~labels).sum(), 1)]
    thresholds = np.r_[np.inf, scores[distinct]]
    return fpr, tpr, thresholds


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve: the chance a random positive scores above a random negative
    (ties count one half)."""
    scores, labels = np.asarray(scores, dtype=float), np.asarray(labels, dtype=bool)
    positives, negatives = scores[labels], scores[~labels]
    if positives.size == 0 or negatives.size == 0:
        raise ValueError("AUC needs both positive and negative images.")
    greater = (positives[:, None] > negatives[None, :]).sum()
    ties = (positives[:, None] == negatives[None, :]).sum()
    return float((greater + 0.5 * ties) / (positives.size * negatives.size))


def sensitivity_specificity(predicted, labels) -> tuple[float, float]:
    predicted, labels = np.asarray(predicted, dtype=bool), np.asarray(labels, dtype=bool)
    sensitivity = (predicted & labels).sum() / max(labels.sum(), 1)
    specificity = (~predicted & ~labels).sum() / max((~labels).sum(), 1)
    return float(sensitivity), float(specificity)


def bootstrap_ci(statistic, *arrays, resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float] | None:
    """Percentile bootstrap interval of ``statistic(*arrays)``, resampling images with
    replacement. Resamples where the statistic is undefined (one class only) are skipped.
    With a test set of a few hundred images these intervals are wide: report them."""
    arrays = [np.asarray(a) for a in arrays]
    size = len(arrays[0])
    if size == 0:
        return None
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(resamples):
        index = rng.integers(0, size, size)
        try:
            values.append(statistic(*(a[index] for a in arrays)))
        except ValueError:
            continue
    if len(values) < resamples // 2:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
