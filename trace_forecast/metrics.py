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
    as detected once any of its points is flagged (the usual, generous protocol).

    ``O(n log n)``: counts at every threshold come from sorted scores, not a loop over
    thresholds.
    """
    scores, labels = np.asarray(scores, float), np.asarray(labels).astype(bool)
    if not labels.any():
        return 0.0
    thresholds = np.unique(scores)[::-1]                       # descending
    normal = np.sort(scores[~labels])
    n_normal_flagged = len(normal) - np.searchsorted(normal, thresholds, side="left")
    if point_adjust:
        runs = segments(labels)
        seg_max = np.array([scores[a:b].max() for a, b in runs])
        seg_len = np.array([b - a for a, b in runs], dtype=float)
        order = np.argsort(seg_max)
        cum = np.concatenate([[0.0], np.cumsum(seg_len[order][::-1])])   # lengths of the k largest maxima
        k = len(seg_max) - np.searchsorted(seg_max[order], thresholds, side="left")
        tp = cum[k]
    else:
        anomalous = np.sort(scores[labels])
        tp = (len(anomalous) - np.searchsorted(anomalous, thresholds, side="left")).astype(float)
    flagged = tp + n_normal_flagged
    f1 = 2 * tp / (flagged + labels.sum())  # labels.sum() > 0, and tp = 0 gives 0
    return float(f1.max())


def soft_labels(labels: np.ndarray, buffer: int) -> np.ndarray:
    """Labels widened by ``buffer // 2`` steps on each side with weights
    ``sqrt(1 - d / (buffer // 2))`` (Paparrizos et al.'s range-based labels)."""
    out = np.asarray(labels, float).copy()
    half = buffer // 2
    if half < 1:
        return out
    n = len(out)
    for start, end in segments(np.asarray(labels).astype(bool)):
        d = np.arange(1, half + 1)
        w = np.sqrt(1 - d / (half + 1))
        after = end - 1 + d
        before = start - d
        keep = after < n
        out[after[keep]] = np.maximum(out[after[keep]], w[keep])
        keep = before >= 0
        out[before[keep]] = np.maximum(out[before[keep]], w[keep])
    return out


def _weighted_curves(scores: np.ndarray, weights: np.ndarray) -> tuple[float, float]:
    """(ROC AUC, average precision) with soft positive weights ``weights`` in [0, 1]."""
    order = np.argsort(-scores, kind="stable")
    s, pos = scores[order], weights[order]
    neg = 1.0 - pos
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]           # end of each tie group
    tp, fp = np.cumsum(pos)[last], np.cumsum(neg)[last]
    tpr = np.r_[0.0, tp / max(pos.sum(), 1e-12)]
    fpr = np.r_[0.0, fp / max(neg.sum(), 1e-12)]
    roc = float(np.trapezoid(tpr, fpr))
    precision = tp / np.maximum(tp + fp, 1e-12)
    ap = float(np.sum(np.diff(tpr) * precision))
    return roc, ap


def vus(scores: np.ndarray, labels: np.ndarray, max_buffer: int, steps: int = 8) -> tuple[float, float]:
    """Volume under the ROC and PR surfaces (VUS-ROC, VUS-PR): the range-based ROC AUC and
    average precision averaged over label buffers ``0 .. max_buffer`` (``steps + 1``
    evenly spaced sizes). Simplified from Paparrizos et al. (VLDB 2022): no existence
    reward, soft labels as in :func:`soft_labels`.
    """
    scores = np.asarray(scores, float)
    buffers = np.unique(np.linspace(0, max_buffer, steps + 1).astype(int))
    curves = [_weighted_curves(scores, soft_labels(labels, int(b))) for b in buffers]
    return float(np.mean([c[0] for c in curves])), float(np.mean([c[1] for c in curves]))


def segments(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` (end exclusive) of each run of ``True`` in ``flags`` (labelled
    anomaly segments here; flagged runs in the detector)."""
    edges = np.diff(np.concatenate([[0], np.asarray(flags).astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def ucr_hit(scores: np.ndarray, begin: int, end: int, slack: int = 100) -> bool:
    """UCR archive score: is the top-scored point within ``slack`` of the anomaly?"""
    top = int(np.argmax(scores))
    return begin - slack <= top <= end + slack
