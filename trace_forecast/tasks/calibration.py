"""Conformal calibration of forecast intervals: a pool of out-of-sample residual windows,
each tagged with the series it came from, and the quantiles and variances it gives.

Normalised split-conformal prediction (``docs/design.md``, "Prediction intervals"). A
residual is ``y - pred`` of one window in that window's RevIN units. Series differ in how
well they are forecast, so each series ``i`` gets a difficulty scale ``s_i``, the root
mean square of its own residuals. The pooled residuals are divided by their series'
scale, and the quantiles of that one pool, times ``s_i``, give series ``i``'s interval.
With one series this is plain split-conformal per horizon step.

Measured on M4 Hourly's tuning split (414 series, 95 % intervals): MSIS 23.1 with one
pool, 10.7 with the normalised pool, coverage 92.6 % either way; per-series quantiles
(about 40 windows each) under-covered (76 %), and shrinking the scale toward the
panel's typical scale only made MSIS worse (docs/design.md).

Numpy only: sktime's ``ConformalIntervals`` and Darts' conformal models refit or
re-forecast the wrapped model per calibration point; here the residuals are by-products
of the fit (validation windows) and of ``update`` (windows it completes).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

# Newest residual windows kept per pool: all of them for one series, split between series in a panel.
CALIBRATION_WINDOWS = 1024
# Windows forecast at fit for calibration (the validation windows, spread evenly in time).
FIT_CALIBRATION_WINDOWS = 256
# ... but never fewer than this many per series, so that every series has its own scale.
SERIES_WINDOWS = 8
# Scales below this (a series forecast perfectly, e.g. a constant) are raised to it.
MIN_SCALE = 1e-6


def windows_per_series(n_series: int, budget: int = CALIBRATION_WINDOWS) -> int:
    """How many residual windows each of ``n_series`` series keeps out of ``budget``."""
    return max(SERIES_WINDOWS, budget // max(n_series, 1))


def newest_per_series(series: np.ndarray, limit: int) -> np.ndarray:
    """Sorted indices of the last ``limit`` entries of each series in ``series`` (oldest first)."""
    position = np.arange(len(series))
    order = np.lexsort((-position, series))  # by series, newest first within each
    starts = np.r_[0, np.flatnonzero(np.diff(series[order])) + 1] if len(order) else np.zeros(0, dtype=int)
    rank = position - np.repeat(starts, np.diff(np.r_[starts, len(order)]))
    return np.sort(order[rank < limit])


def spread_in_time(origins: np.ndarray, budget: int) -> np.ndarray:
    """Rows of a ``[n, 2]`` (series, origin) plan: up to :func:`windows_per_series` of each
    series, evenly spaced over its origins (its first and last included)."""
    if len(origins) == 0:
        return origins
    ids = origins[:, 0]
    limit = windows_per_series(len(np.unique(ids)), budget)
    rows = []
    for i in np.unique(ids):
        own = np.flatnonzero(ids == i)
        rows.append(own if len(own) <= limit else own[np.unique(np.linspace(0, len(own) - 1, limit).round().astype(int))])
    return origins[np.concatenate(rows)]


def conformal_levels(alphas: list[float], n: int) -> np.ndarray:
    """Split-conformal's finite-sample quantile levels for ``n`` residuals: an upper level
    ``a`` becomes ``a (n + 1) / n`` and a lower one ``1 - (1 - a) (n + 1) / n`` (clipped to
    [0, 1]), so that the interval covers a new exchangeable residual with at least the
    nominal probability; the median stays. Negligible for the usual hundreds of windows,
    it widens the intervals of short series."""
    a = np.asarray(alphas, dtype=float)
    stretch = (n + 1) / n
    return np.clip(np.where(a > 0.5, a * stretch, np.where(a < 0.5, 1 - (1 - a) * stretch, a)), 0.0, 1.0)


def out_of_sample(held_out: np.ndarray, trained: np.ndarray) -> np.ndarray:
    """The rows of ``held_out`` (``[n, 2]`` series, origin) that are not training windows."""
    seen = {tuple(row) for row in trained.tolist()}
    keep = np.array([tuple(row) not in seen for row in held_out.tolist()], dtype=bool)
    return held_out[keep]


def naive_residuals(series: list[np.ndarray], origins: np.ndarray, context_length: int,
                    horizon: int) -> np.ndarray:
    """``[n, H]`` errors of the last-value forecast at ``origins`` in each window's RevIN units:
    the fallback calibration of a series too short to hold out any window (it assumes the
    fitted model does no worse than repeating the last value)."""
    rows = []
    for i, origin in origins.tolist():
        s = np.asarray(series[i], dtype=np.float64)
        context = s[max(0, origin - context_length) : origin]
        context = context[np.isfinite(context)]  # missing values: the last observed one
        if not len(context):
            rows.append(np.full(horizon, np.nan))
            continue
        std = context.std() + 1e-5
        rows.append((s[origin : origin + horizon] - context[-1]) / std)
    return np.asarray(rows, dtype=np.float32).reshape(-1, horizon)


@dataclass
class ResidualPool:
    """Residual windows ``[n, H]`` (RevIN units, oldest first) and their series ``[n]``.
    A missing target leaves a NaN residual, which every statistic skips."""

    residuals: np.ndarray
    series: np.ndarray

    @classmethod
    def empty(cls, horizon: int) -> ResidualPool:
        return cls(np.zeros((0, horizon), dtype=np.float32), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return len(self.residuals)

    def copy(self) -> ResidualPool:
        return ResidualPool(self.residuals.copy(), self.series.copy())

    def concat(self, newer: ResidualPool) -> ResidualPool:
        """This pool followed by ``newer``, every window kept."""
        return ResidualPool(np.concatenate([self.residuals, newer.residuals]),
                            np.concatenate([self.series, newer.series]))

    def newest(self, n_series: int) -> ResidualPool:
        """The newest :func:`windows_per_series` windows of each series."""
        keep = newest_per_series(self.series, windows_per_series(n_series))
        return ResidualPool(self.residuals[keep], self.series[keep])

    def extend(self, newer: ResidualPool, n_series: int) -> ResidualPool:
        """This pool plus ``newer``, keeping the newest :func:`windows_per_series` of each series."""
        return self.concat(newer).newest(n_series)

    def scales(self, n_series: int) -> np.ndarray:
        """Each series' difficulty ``[n_series]``: the RMS of its residuals. A series without
        residuals gets the geometric mean of the others' (all 1 for an empty pool)."""
        if len(self) == 0 or not np.isfinite(self.residuals).any():
            return np.ones(n_series)
        observed = np.isfinite(self.residuals).any(axis=1)
        with np.errstate(invalid="ignore"):
            window_squares = np.nanmean(np.where(observed[:, None], self.residuals.astype(np.float64) ** 2, 0.0), axis=1)
        counts = np.bincount(self.series[observed], minlength=n_series)[:n_series]
        squares = np.bincount(self.series[observed], weights=window_squares[observed], minlength=n_series)[:n_series]
        own = counts > 0
        scales = np.ones(n_series)
        scales[own] = np.maximum(np.sqrt(squares[own] / counts[own]), MIN_SCALE)
        scales[~own] = np.exp(np.log(scales[own]).mean())
        return scales

    def normalised(self, n_series: int) -> tuple[np.ndarray, np.ndarray]:
        """``(residuals / their series' scale, scales)``."""
        scales = self.scales(n_series)
        return self.residuals / scales[self.series][:, None], scales

    def calibrated(self, steps: np.ndarray) -> np.ndarray:
        """Boolean ``[len(steps)]`` (0-based): which steps have a residual to calibrate on (all, for
        an empty pool, whose intervals collapse to the point forecast by design)."""
        if len(self) == 0:
            return np.ones(len(steps), dtype=bool)
        return np.isfinite(self.residuals[:, steps]).any(axis=0)

    def quantiles(self, alphas: list[float], steps: np.ndarray, n_series: int) -> np.ndarray:
        """Offsets ``[n_series, len(alphas), len(steps)]`` in RevIN units (``steps`` 0-based),
        at the finite-sample levels of :func:`conformal_levels`. With no residuals,
        intervals collapse to the point forecast."""
        if len(self) == 0:
            return np.zeros((n_series, len(alphas), len(steps)))
        z, scales = self.normalised(n_series)
        z = z[:, steps]
        if not np.isnan(z).any():
            return scales[:, None, None] * np.quantile(z, conformal_levels(alphas, len(self)), axis=0)[None]
        # Missing targets: each step's quantiles over its observed residuals, at the levels of its own count.
        counts = np.isfinite(z).sum(axis=0)
        q = np.zeros((len(alphas), z.shape[1]))
        for count in np.unique(counts[counts > 0]):
            columns = counts == count
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                q[:, columns] = np.nanquantile(z[:, columns], conformal_levels(alphas, int(count)), axis=0)
        return scales[:, None, None] * q[None]

    def variance(self, steps: np.ndarray, n_series: int) -> np.ndarray:
        """Variance ``[n_series, len(steps)]`` of the distribution that :meth:`quantiles` describes."""
        if len(self) == 0:
            return np.zeros((n_series, len(steps)))
        z, scales = self.normalised(n_series)
        z = z[:, steps]
        if np.isnan(z).any():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                var = np.nan_to_num(np.nanvar(z, axis=0))
        else:
            var = z.var(axis=0)
        return scales[:, None] ** 2 * var[None]
