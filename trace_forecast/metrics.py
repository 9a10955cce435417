"""Forecast and anomaly metrics used by the quick-start and the benchmarks."""

from __future__ import annotations

import numpy as np


def mse(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean((np.asarray(y) - np.asarray(pred)) ** 2))


def mae(y: np.ndarray, pred: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(y) - np.asarray(pred))))


def seasonal_naive(histories: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """Repeat the last ``period`` values of each history ``[n, L]`` over ``horizon`` steps."""
    last = histories[:, -period:]
    reps = -(-horizon // period)
    return np.tile(last, (1, reps))[:, :horizon]


def smape(y: np.ndarray, pred: np.ndarray) -> float:
    """Symmetric MAPE in percent (M4 definition)."""
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    return float(np.mean(200.0 * np.abs(y - pred) / (np.abs(y) + np.abs(pred))))


def mase(y: np.ndarray, pred: np.ndarray, history: np.ndarray, period: int) -> float:
    """Mean absolute scaled error against the in-sample seasonal-naive error (M4 definition)."""
    history = np.asarray(history, float)
    scale = np.mean(np.abs(history[period:] - history[:-period]))
    return float(np.mean(np.abs(np.asarray(y, float) - np.asarray(pred, float))) / scale)


def owa(smape_model: float, mase_model: float, smape_naive2: float, mase_naive2: float) -> float:
    """Overall weighted average relative to Naive2 (M4)."""
    return 0.5 * (smape_model / smape_naive2 + mase_model / mase_naive2)


def best_f1(scores: np.ndarray, labels: np.ndarray, point_adjust: bool = False) -> float:
    """Best F1 over all thresholds; with ``point_adjust`` a whole labelled segment counts
    as detected once any of its points is flagged (the usual, generous protocol)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    segments = _segments(labels)
    best = 0.0
    for threshold in np.unique(scores):
        flagged = scores >= threshold
        if point_adjust:
            flagged = flagged.copy()
            for start, end in segments:
                if flagged[start:end].any():
                    flagged[start:end] = True
        tp = np.sum(flagged & labels)
        if tp == 0:
            continue
        precision = tp / np.sum(flagged)
        recall = tp / np.sum(labels)
        best = max(best, 2 * precision * recall / (precision + recall))
    return float(best)


def _segments(labels: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], labels.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True))


def ucr_hit(scores: np.ndarray, begin: int, end: int, slack: int = 100) -> bool:
    """UCR archive score: is the top-scored point within ``slack`` of the anomaly?"""
    top = int(np.argmax(scores))
    return begin - slack <= top <= end + slack
