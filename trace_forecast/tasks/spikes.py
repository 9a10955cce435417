"""Point spikes: a score component that sees what a first-difference detector sees.

A reconstruction that hid a step scores it by how far the step is from what its context
predicts. Where the context predicts little -- an AR(1) process, a random walk, a noisy
cycle whose hidden quarter spans more than a period -- the hidden block's errors are as large
as a spike, and a six-sigma spike goes unseen (``python -m benchmarks.spikes``: AUC-ROC 0.41
to 0.54 on AR(1) and random walks, where the z-scored first difference reaches 0.98 to 1.00).

A spike stands apart from both neighbours: the component is the *local extremum height*
``min(|x[t] - x[t-1]|, |x[t] - x[t+1]|)`` where both differences have the same sign (a peak
or a trough), and 0 elsewhere, so a level shift (large on one side only) and a steep slope
(opposite signs) add nothing; reconstruction and discords see those. Only a peak higher
than any the training data held counts: it scores above every training score, by its
excess over the training top. Lower peaks stay at the median training score, so that
normal peaks never outrank what the other components see (mapped linearly from the median
instead, normal peaks of real series outranked their labelled anomalies:
``docs/benchmarks_anomaly_notes.md``, "Point spikes").

``spikes="auto"`` keeps the component to channels whose training first differences are close
to Gaussian (excess kurtosis at most :data:`MAX_KURTOSIS`): there a spike is rare by
construction. Heavy-tailed differences (bursty web-service metrics, a beat train's sharp
peaks) hold spikes of their own in normal data, and the component would rank them above the
anomalies. Written here rather than taken from a library: it is a few array operations on
the detector's own calibration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d

#: ``spikes="auto"``: the largest excess kurtosis of a channel's training first differences
#: for which the component joins the score (Gaussian noise: 0; a Laplace law: 3).
MAX_KURTOSIS = 1.0
SPIKE = "spike"
TIE_BREAK = 0.01  # as the reconstruction's spans: the plateau's top stays on the spike itself


def extremum_heights(values: np.ndarray) -> np.ndarray:
    """``[T, C]`` local extremum heights of ``values [T, C]``: at a peak or a trough the
    smaller of its two steps, 0 elsewhere, at both ends and next to a missing value."""
    x = np.asarray(values, float)
    out = np.zeros_like(x)
    if len(x) < 3:
        return out
    left, right = x[1:-1] - x[:-2], x[1:-1] - x[2:]
    with np.errstate(invalid="ignore"):
        peak = np.sign(left) * np.sign(right) > 0
    out[1:-1] = np.where(peak, np.minimum(np.abs(left), np.abs(right)), 0.0)
    return np.nan_to_num(out, nan=0.0)


def spread(component: np.ndarray, span: int) -> np.ndarray:
    """The component ``[T, C]`` as a score: a ``span``-step centred maximum, plus a hundredth
    of the component so that the plateau's top stays on the spike (what the reconstruction's
    short span does, :func:`~trace_forecast.tasks.scoring.smooth_errors`, without its average,
    which would halve a one-step spike). Labels read the component itself."""
    if span <= 1:
        return component
    return maximum_filter1d(component, span, axis=0, mode="nearest") + TIE_BREAK * component


def gaussian_differences(series: list[np.ndarray]) -> np.ndarray:
    """``[C]`` bool: the channels whose training first differences (every series, ``[T, C]``
    arrays, missing steps aside) have an excess kurtosis of at most :data:`MAX_KURTOSIS`."""
    diffs = np.concatenate([np.diff(np.asarray(s, float), axis=0) for s in series])
    out = np.zeros(diffs.shape[1], bool)
    for c in range(diffs.shape[1]):
        d = diffs[np.isfinite(diffs[:, c]), c]
        if len(d) < 8 or not np.var(d) > 0:
            continue
        d = d - d.mean()
        out[c] = np.mean(d**4) / np.mean(d**2) ** 2 - 3.0 <= MAX_KURTOSIS
    return out


@dataclass(frozen=True)
class SpikeProfile:
    """The spike component's calibration, ``[C]`` arrays: the training extremum heights'
    median and largest value, the training scores' median and largest value (the units the
    heights are mapped into), and which channels it scores (``active``; the others never
    raise the score)."""

    height_center: np.ndarray
    height_top: np.ndarray
    score_center: np.ndarray
    score_top: np.ndarray
    active: np.ndarray

    @classmethod
    def fit(cls, series: list[np.ndarray], scores: list[np.ndarray], wanted: bool | str,
            usable: np.ndarray | None = None) -> SpikeProfile | None:
        """From the training series and their per-channel scores (``[T, C]`` each); only the
        ``usable`` channels (``[C]`` bool; default all) may take the component. ``None`` where
        none does (``wanted`` False, or ``"auto"`` and no usable channel with Gaussian
        differences)."""
        if not wanted:
            return None
        active = gaussian_differences(series) if wanted == "auto" else np.ones(series[0].shape[1], bool)
        if usable is not None:
            active = active & usable
        if not active.any():
            return None
        heights = np.concatenate([extremum_heights(s) for s in series])
        joined = np.concatenate(scores)
        center, top = np.median(heights, axis=0), heights.max(axis=0)
        return cls(center, np.maximum(top, center + 1e-12), np.median(joined, axis=0), joined.max(axis=0), active)

    def mapped(self, values: np.ndarray) -> np.ndarray:
        """The component ``[T, C]`` of ``values [T, C]`` in the score's units. Only a peak
        higher than any of the training data's counts: it scores the top training score plus
        its excess over the training top, in units of the training heights' spread (top less
        median) per spread of the training scores. Every other step, and every step of an
        inactive channel, stays at the median training score."""
        heights = extremum_heights(values)
        scale = (self.score_top - self.score_center) / (self.height_top - self.height_center)
        above = self.active & (heights > self.height_top)
        return np.where(above, self.score_top + (heights - self.height_top) * scale, self.score_center)
