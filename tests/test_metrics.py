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
