"""Metric functions against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from trace_forecast import metrics


def test_mse_mae():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([1.0, 3.0, 2.0])
    assert metrics.mse(y, p) == pytest.approx((0 + 1 + 4) / 3)
    assert metrics.mae(y, p) == pytest.approx((0 + 1 + 2) / 3)


def test_seasonal_naive_repeats_the_last_period():
    hist = np.array([[1, 2, 3, 4, 5, 6]], dtype=float)
    assert metrics.seasonal_naive(hist, 5, 3).tolist() == [[4, 5, 6, 4, 5]]


def test_smape_mase_owa():
    y, p = np.array([100.0, 200.0]), np.array([110.0, 180.0])
    # 200*|e|/(|y|+|p|): 200*10/210 and 200*20/380
    assert metrics.smape(y, p) == pytest.approx((2000 / 210 + 4000 / 380) / 2)
    history = np.array([1.0, 2.0, 4.0, 7.0])  # period 1 differences: 1, 2, 3 -> scale 2
    assert metrics.mase(y, p, history, period=1) == pytest.approx(15.0 / 2.0)
    assert metrics.owa(10.0, 1.0, 20.0, 4.0) == pytest.approx(0.5 * (0.5 + 0.25))


def test_best_f1_with_and_without_point_adjustment():
    labels = np.array([0, 1, 1, 1, 0, 0])
    scores = np.array([0.1, 0.9, 0.2, 0.2, 0.3, 0.1])
    # threshold 0.9 flags one of three anomalous points: P=1, R=1/3 -> F1 0.5;
    # threshold 0.2 flags 1,2,3,4: P=3/4, R=1 -> F1 6/7 (the best).
    assert metrics.best_f1(scores, labels) == pytest.approx(6 / 7)
    # with point adjustment, threshold 0.9 already detects the whole segment: F1 = 1
    assert metrics.best_f1(scores, labels, point_adjust=True) == pytest.approx(1.0)


def test_ucr_hit_uses_a_100_step_slack():
    scores = np.zeros(1000)
    scores[350] = 1.0
    assert metrics.ucr_hit(scores, 400, 450)
    assert not metrics.ucr_hit(scores, 451, 500)


def _best_f1_brute(scores, labels, point_adjust):
    """The definition, threshold by threshold (the fast version must agree)."""
    from trace_forecast.metrics import segments

    labels = labels.astype(bool)
    best = 0.0
    for t in np.unique(scores):
        flagged = scores >= t
        if point_adjust:
            for a, b in segments(labels):
                if flagged[a:b].any():
                    flagged[a:b] = True
        tp = np.sum(flagged & labels)
        if tp:
            p, r = tp / flagged.sum(), tp / labels.sum()
            best = max(best, 2 * p * r / (p + r))
    return best


@pytest.mark.parametrize("point_adjust", [False, True])
def test_fast_best_f1_matches_definition(point_adjust):
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = np.round(rng.random(200), 2)  # ties on purpose
        labels = np.zeros(200)
        for start in rng.choice(190, 3, replace=False):
            labels[start : start + rng.integers(1, 8)] = 1
        assert metrics.best_f1(scores, labels, point_adjust) == pytest.approx(_best_f1_brute(scores, labels, point_adjust))


def test_vus_perfect_random_and_buffer():
    from trace_forecast.metrics import soft_labels, vus

    labels = np.zeros(100)
    labels[40:45] = 1
    perfect = labels.copy()
    assert vus(perfect, labels, 0, steps=1) == pytest.approx((1.0, 1.0))
    # a score peaking just before the segment earns credit only once the buffer reaches it
    near = np.zeros(100)
    near[38] = 1.0
    roc0, _ = vus(near, labels, 0, steps=1)
    roc_buffered, _ = vus(near, labels, 10, steps=1)
    assert roc_buffered > roc0
    # soft labels: ramps of sqrt(1 - d / (half + 1)) on both sides, 1 inside
    soft = soft_labels(labels, 4)
    np.testing.assert_allclose(soft[37:48], [0, np.sqrt(1 / 3), np.sqrt(2 / 3), 1, 1, 1, 1, 1, np.sqrt(2 / 3), np.sqrt(1 / 3), 0])
    rng = np.random.default_rng(1)
    roc_random, pr_random = vus(rng.random(100), labels, 0, steps=1)
    assert 0.2 < roc_random < 0.8 and pr_random < 0.3
