"""ml.core.metrics against answers worked out by hand; the evaluation's operating-point search."""

from __future__ import annotations

import numpy as np
import pytest

from ml.core import metrics


def test_dice():
    empty = np.zeros((4, 4), bool)
    assert metrics.dice(empty, empty) == 1.0
    one = empty.copy()
    one[0, 0] = True
    assert metrics.dice(one, empty) == 0.0 and metrics.dice(empty, one) == 0.0
    a, b = empty.copy(), empty.copy()
    a[0, :3] = True  # 3 pixels
    b[0, 1:] = True  # 3 pixels, 2 shared
    assert metrics.dice(a, b) == pytest.approx(2 * 2 / 6)


def test_challenge_score_reweighting():
    dices = [1.0, 0.5, 0.0, 1.0]
    labels = [True, True, False, False]
    assert metrics.challenge_score(dices, labels) == pytest.approx(0.625)
    # 0.22 x mean(positives) + 0.78 x mean(negatives) = 0.22 x 0.75 + 0.78 x 0.5
    assert metrics.challenge_score(dices, labels, 0.22) == pytest.approx(0.555)
    with pytest.raises(ValueError):
        metrics.challenge_score([1.0], [True], 0.22)


def test_auc_with_ties():
    scores, labels = [0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0]
    # pairs (pos, neg): 0.9>0.5, 0.9>0.1, 0.5=0.5 (half), 0.5>0.1 -> 3.5 / 4
    assert metrics.roc_auc(scores, labels) == pytest.approx(0.875)
    assert metrics.roc_auc([0.2, 0.2], [1, 0]) == pytest.approx(0.5)
    assert metrics.roc_auc([0.1, 0.9], [1, 0]) == pytest.approx(0.0)
    with pytest.raises(ValueError):
        metrics.roc_auc([0.1, 0.9], [1, 1])


def test_roc_curve():
    fpr, tpr, thresholds = metrics.roc_curve([0.9, 0.5, 0.5, 0.1], [1, 1, 0, 0])
    np.testing.assert_allclose(tpr, [0, 0.5, 1, 1])
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 1])
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.5, 0.1])
    assert np.trapezoid(tpr, fpr) == pytest.approx(0.875)  # the area is the AUC


def test_sensitivity_specificity():
    sensitivity, specificity = metrics.sensitivity_specificity([1, 0, 1, 0, 0], [1, 1, 0, 0, 0])
    assert sensitivity == pytest.approx(0.5)
    assert specificity == pytest.approx(2 / 3)


def test_dice_from_counts_matches_decision_rule():
    from ml.core.operating_point import dice_from_counts

    positive = np.array([True, True, False, False])
    area = np.array([10, 10, 10, 0])
    intersection = np.array([5, 0, 5, 0])
    truth = np.array([10, 0, 10, 0])
    # hit: 2*5/20; false positive on an empty truth: 0; called negative on a positive: 0;
    # negative on empty: 1
    np.testing.assert_allclose(dice_from_counts(positive, area, intersection, truth), [0.5, 0, 0, 1])


def test_bootstrap_interval_brackets_the_statistic_and_narrows_with_data():
    rng = np.random.default_rng(1)
    small = rng.normal(0.5, 0.2, 40)
    large = rng.normal(0.5, 0.2, 4000)
    low, high = metrics.bootstrap_ci(np.mean, small, resamples=500)
    assert low < small.mean() < high
    low_large, high_large = metrics.bootstrap_ci(np.mean, large, resamples=500)
    assert (high_large - low_large) < (high - low) / 5
    # a statistic undefined on most resamples gives no interval rather than a wrong one
    labels = np.zeros(100, dtype=bool)
    assert metrics.bootstrap_ci(metrics.roc_auc, np.linspace(0, 1, 100), labels) is None
