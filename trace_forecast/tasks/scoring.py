"""Per-time-step anomaly scores: the error of reconstructions that did not see the step.

A reconstruction model that sees a step can copy it, anomaly included (our backbone's
second pretraining stage made visible patches near-exact copies), so every scheme except
``"none"`` scores a step only from reconstructions in which its patch was *hidden*:

- ``"interleaved"``: ``n_masks`` complementary masks per window; mask ``k`` hides the
  patches ``p`` with ``p % n_masks == k``, so every patch is hidden exactly once and is
  reconstructed from both neighbours (the last patch of a window from its left side only).
- ``"block"``: ``n_masks`` complementary masks hiding contiguous blocks of patches.
- ``"tail"``: the last ``n_masks`` patches of each window are hidden (a forecast
  residual); the first steps of a series, which have no history, get the median score.
- ``"none"``: the unmasked reconstruction (MOMENT's scoring; kept for comparison).

Windows end every ``stride`` steps and at the series end (left-padded where the series is
shorter than the context), so each step is scored ``context / stride`` times on average
and the errors are averaged. Errors are absolute, in the series' own units (``unit=
"series"``) or in each window's RevIN units (``unit="window"``). Windows are streamed in
batches: memory is bounded by ``batch_size`` whatever the series length.

The rest of the pipeline: :class:`ErrorScale` standardises the step errors against the
training errors (per channel and position class), :class:`MultiScale` smooths them at a
few spans, each in units of its training level (or :func:`smooth_errors` at one span),
channels are combined by their maximum (:func:`anomaly_scores`), and
:func:`tail_threshold` turns scores into flags (:func:`trace_forecast.metrics.segments`
into runs).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from trace_forecast.engine.batching import inference_batch_size
from trace_forecast.engine.devices import torch_device
from trace_forecast.engine.threads import limit_worker_threads
from trace_forecast.metrics import segments
from trace_forecast.network import TraceNetwork

MASK_SCHEMES = ("interleaved", "block", "tail", "none")
UNITS = ("series", "window")


def hidden_patches(scheme: str, n_patches: int, n_masks: int) -> np.ndarray:
    """Boolean ``[K, n_patches]``: which patches each of the ``K`` masks hides."""
    p = np.arange(n_patches)
    if scheme == "interleaved":
        return p[None, :] % n_masks == np.arange(n_masks)[:, None]
    if scheme == "block":
        return (p[None, :] * n_masks) // n_patches == np.arange(n_masks)[:, None]
    if scheme == "tail":
        return (p >= n_patches - n_masks)[None, :]
    if scheme == "none":
        return np.zeros((1, n_patches), dtype=bool)
    raise ValueError(f"unknown mask scheme {scheme!r}; choose from {MASK_SCHEMES}")


def window_masks(scheme: str, n_patches: int, n_masks: int, observed_patches: int) -> tuple[str, np.ndarray]:
    """The masks for windows whose last ``observed_patches`` patches hold data (a series
    shorter than the context is one left-padded window): masks are laid over the observed
    patches only and always leave one visible. Returns the scheme actually used (``"none"``
    when a single patch leaves nothing to hide) and the ``[K, n_patches]`` masks."""
    observed = min(n_patches, observed_patches)
    if scheme != "none" and observed < 2:
        scheme = "none"
    k = min(n_masks, observed - 1) if scheme == "tail" else min(n_masks, observed)
    hide = hidden_patches(scheme, observed, max(k, 1))
    return scheme, np.concatenate([np.zeros((len(hide), n_patches - observed), bool), hide], axis=1)


def window_ends(n: int, length: int, stride: int, first: int | None = None) -> np.ndarray:
    """End positions (exclusive) of the scoring windows: every ``stride`` steps from
    ``first`` (default: the first full window) and always the series end."""
    first = min(length, n) if first is None else min(first, n)
    ends = np.arange(first, n + 1, stride)
    if len(ends) == 0 or ends[-1] != n:
        ends = np.append(ends, n)
    return ends


def _batches(ends: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    for i in range(0, len(ends), batch):
        yield ends[i : i + batch]


@torch.inference_mode()
def step_errors(
    network: TraceNetwork,
    series: np.ndarray,
    scheme: str = "block",
    n_masks: int = 4,
    stride: int = 64,
    unit: str = "series",
    batch_size: int | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Mean absolute error ``[T]`` of each step of a univariate ``series`` over the
    reconstructions in which the step was hidden (``scheme="none"``: all of them). A
    missing step (NaN) has no error of its own: it gets the series' median error, so a gap
    is never an anomaly by itself (smoothing still lends it its neighbours' scores)."""
    if unit not in UNITS:
        raise ValueError(f"unknown unit {unit!r}; choose from {UNITS}")
    limit_worker_threads()
    dev = torch_device(device)
    batch_size = batch_size or inference_batch_size(dev)
    backbone = network.backbone.to(dev).eval()
    length, patch = network.spec.context_length, backbone.patch_len
    n = len(series)
    scheme, hide = window_masks(scheme, length // patch, n_masks, -(-n // patch))
    scored = torch.from_numpy(np.repeat(hide, patch, axis=1)).to(dev)            # [K, L] hidden steps
    shown_steps = (~scored).float()
    if scheme == "none":
        scored = ~scored
    k = len(hide)
    first = (int(hide[0].sum()) + 1) * patch if scheme == "tail" else None
    ends = window_ends(n, length, stride, first)
    padded = np.concatenate([np.zeros(length, np.float32), np.asarray(series, np.float32)])
    observed = np.concatenate([np.zeros(length, np.float32), np.ones(n, np.float32)])
    total = np.zeros(n + length)
    count = np.zeros(n + length)
    with network.inference():  # gated LoRA updates merged: the same errors, faster
        for chunk in _batches(ends, max(1, batch_size // k)):
            idx = chunk[:, None] + np.arange(length)[None, :]                         # padded coords
            b = len(chunk)
            x = torch.from_numpy(padded[idx]).to(dev).repeat_interleave(k, 0)[:, None, :]   # [b*K, 1, L]
            obs = torch.from_numpy(observed[idx]).to(dev).repeat_interleave(k, 0)
            enc = backbone.encode(x, obs, shown_steps.repeat(b, 1))
            rec = backbone.head(enc.tokens)
            err = (rec.float() - backbone.normalizer.normalize(x, enc.mean, enc.std).float()).abs()[:, 0]
            if unit == "series":
                err = err * enc.std.float()[:, 0]
            weight = (scored.repeat(b, 1) & obs.bool() & torch.isfinite(x[:, 0])).float()  # never a missing step
            err = (err * weight).reshape(b, k, length).sum(1).cpu().numpy()
            hits = weight.reshape(b, k, length).sum(1).cpu().numpy()
            total += np.bincount(idx.ravel(), err.ravel(), minlength=len(total))
            count += np.bincount(idx.ravel(), hits.ravel(), minlength=len(count))
    total, count = total[length:], count[length:]
    out = total / np.maximum(count, 1)
    if (count == 0).any():
        out[count == 0] = np.median(out[count > 0]) if (count > 0).any() else 0.0
    return out


# --------------------------------------------------------------------------- scores
# The user-facing ``score`` variants: (mask scheme, masks per window or hidden tail patches).
SCORES: dict[str, tuple[str, int]] = {
    "block": ("block", 4),
    "interleaved": ("interleaved", 4),
    "forecast": ("tail", 16),
    "unmasked": ("none", 1),
}
# The masks of the multi-task loss's reconstruction term: those of the default score, so
# that a jointly trained model is trained for the score its detector reads.
JOINT_MASKS = SCORES["block"]
TIE_BREAK = 0.01
TRAIN_MARGIN = 1.25
MIN_ZONE_STEPS = 64
MAD_TO_SD = 1.4826


def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average along axis 0 (shorter windows at the ends)."""
    if window <= 1 or len(values) == 0:
        return values
    csum = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(values, axis=0)])
    t = np.arange(len(values))
    lo = np.clip(t - window // 2, 0, len(values))
    hi = np.clip(t - window // 2 + window, 0, len(values))
    width = (hi - lo).reshape(-1, *([1] * (values.ndim - 1)))
    return (csum[hi] - csum[lo]) / width


def smooth_errors(errors: np.ndarray, window: int) -> np.ndarray:
    """A ``window``-step centred maximum of the errors' ``window // 4``-step moving
    average (axis 0): the average damps single noisy steps, the maximum keeps a short
    anomaly at its full height and spreads it over its surroundings (anomalies are
    events with an extent; measured against plain averaging in ``docs/benchmarks.md``).
    A hundredth of the average is added so that the top of the maximum's plateau stays
    on the anomaly itself (the highest score points at the most anomalous step)."""
    if window <= 1:
        return errors
    from scipy.ndimage import maximum_filter1d

    average = moving_average(errors, max(1, window // 4))
    return maximum_filter1d(average, window, axis=0, mode="nearest") + TIE_BREAK * average


def unspread(errors: np.ndarray, window: int) -> np.ndarray:
    """What :func:`smooth_errors` spreads, at each step itself: the moving average before
    the maximum filter (never above the smoothed errors). Labels read it, so that a flagged
    run covers the steps whose own evidence is high rather than the filter's reach around
    them; scores keep the spread, which ranking metrics reward."""
    if window <= 1:
        return errors
    return (1.0 + TIE_BREAK) * moving_average(errors, max(1, window // 4))


def channel_errors(
    network: TraceNetwork,
    values: np.ndarray,
    score: str,
    stride: int,
    batch_size: int | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Hidden-step errors ``[T, C]`` of a ``[T, C]`` array, channel by channel."""
    scheme, n_masks = SCORES[score]
    try:
        cols = [step_errors(network, values[:, c], scheme, n_masks, stride, "series", batch_size, device)
                for c in range(values.shape[1])]
    finally:
        network.cpu()                      # fitted estimators keep their weights on the CPU
    return np.stack(cols, axis=1)


def zones(n: int, edge: int) -> np.ndarray:
    """Position class of each of ``n`` steps: 0 = the first ``edge`` steps, 2 = the last
    ``edge`` (after the first), 1 = the middle. Edge steps are covered by fewer windows
    and reconstructed from one side, so their errors are larger and noisier."""
    t = np.arange(n)
    return np.where(t < edge, 0, np.where(t >= n - edge, 2, 1))


@dataclass(frozen=True)
class ErrorScale:
    """Robust per-channel standardisation of step errors against the training errors at
    the same position class (series start, middle, end; :func:`zones`), so that channels,
    series of any scale and noise level, and a series' ends compare:
    ``(e - median) / (1.4826 MAD)``. ``center`` and ``scale`` are ``[3, C]``. Applied to
    the raw step errors, before smoothing (smoothed errors of a short edge have almost no
    spread)."""

    center: np.ndarray
    scale: np.ndarray
    edge: int

    @staticmethod
    def _robust(errors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        center = np.median(errors, axis=0)
        mad = MAD_TO_SD * np.median(np.abs(errors - center), axis=0)
        floor = 1e-6 * np.maximum(np.abs(center), 1e-12)       # constant training errors
        return center, np.maximum(mad, np.maximum(floor, 1e-12))

    @classmethod
    def fit(cls, errors: list[np.ndarray], edge: int) -> ErrorScale:
        """From the ``[T, C]`` errors of each training series; a position class with
        fewer than ``MIN_ZONE_STEPS`` training steps uses all steps' statistics."""
        pooled = cls._robust(np.concatenate(errors))
        centers, scales = [], []
        for zone in range(3):
            part = np.concatenate([e[zones(len(e), edge) == zone] for e in errors])
            center, scale = cls._robust(part) if len(part) >= MIN_ZONE_STEPS else pooled
            centers.append(center)
            scales.append(scale)
        return cls(np.stack(centers), np.stack(scales), edge)

    def standardise(self, errors: np.ndarray) -> np.ndarray:
        """Per-channel z-scores ``[T, C]``."""
        zone = zones(len(errors), self.edge)
        return (errors - self.center[zone]) / self.scale[zone]


TAIL_QUANTILE = 0.99   # training quantile that is one unit of a calibrated score


def tail_level(values: np.ndarray, floor: float = 0.0, quantile: float = TAIL_QUANTILE
               ) -> tuple[np.ndarray, np.ndarray]:
    """Per-column ``(median, quantile - median)`` of ``values [T, C]``: a score's level and
    unit on normal data; the unit is at least ``floor`` times the median's size."""
    center = np.median(values, axis=0)
    unit = np.quantile(values, quantile, axis=0) - center
    return center, np.maximum(np.maximum(unit, floor * np.abs(center)), 1e-12)


def scales_of(score_window: int, smoothing: str = "multi-scale") -> tuple[int, ...]:
    """The spans of a multi-span score: for ``"multi-scale"`` (moving averages) 1,
    ``score_window / 16``, ``/ 4`` and ``score_window``; for ``"two-span"`` (maximum
    filters, :func:`smooth_errors`) ``score_window / 16`` and ``score_window``."""
    if smoothing == "two-span":
        return tuple(sorted({max(1, score_window // 16), max(1, score_window)}))
    return tuple(sorted({1, max(1, score_window // 16), max(1, score_window // 4), max(1, score_window)}))


@dataclass(frozen=True)
class MultiScale:
    """Multi-span scores: the standardised errors smoothed at each span of
    :func:`scales_of`, each in units of its own training level (median and 99th
    percentile, :func:`tail_level`), and the largest taken per step. With
    ``smoothing="multi-scale"`` a span is a moving average: a one-step spike keeps its full
    height at span 1 and a slow anomaly is seen at the long spans. With ``"two-span"`` a
    span is :func:`smooth_errors`' maximum filter, at a short and a long span: the short one
    keeps a spike narrow, the long one spreads an event over its extent. ``center`` and
    ``unit`` are ``[S, C]``."""

    scales: tuple[int, ...]
    center: np.ndarray
    unit: np.ndarray
    smoothing: str = "multi-scale"

    @staticmethod
    def smooth(z: np.ndarray, span: int, smoothing: str) -> np.ndarray:
        """``z`` smoothed at one span: a maximum filter (``"two-span"``) or a moving average."""
        return smooth_errors(z, span) if smoothing == "two-span" else moving_average(z, span)

    @classmethod
    def fit(cls, z: list[np.ndarray], score_window: int, smoothing: str = "multi-scale") -> MultiScale:
        """From the standardised training errors (``[T, C]`` per series)."""
        scales = scales_of(score_window, smoothing)
        levels = [tail_level(np.concatenate([cls.smooth(t, s, smoothing) for t in z])) for s in scales]
        return cls(scales, np.stack([c for c, _ in levels]), np.stack([u for _, u in levels]), smoothing)

    def span_scores(self, z: np.ndarray) -> np.ndarray:
        """Each span's scores ``[S, T, C]`` of standardised errors ``[T, C]``."""
        return np.stack([(self.smooth(z, s, self.smoothing) - self.center[k]) / self.unit[k]
                         for k, s in enumerate(self.scales)])

    def span_evidence(self, z: np.ndarray) -> np.ndarray:
        """Each span's evidence ``[S, T, C]``: its scores before the maximum filter spreads
        them (:func:`unspread`; with ``"multi-scale"``, the scores themselves)."""
        if self.smoothing != "two-span":
            return self.span_scores(z)
        return np.stack([(unspread(z, s) - self.center[k]) / self.unit[k] for k, s in enumerate(self.scales)])

    def scores(self, z: np.ndarray) -> np.ndarray:
        """Scores ``[T, C]`` of standardised errors ``[T, C]``: the largest span's."""
        return self.span_scores(z).max(axis=0)


def anomaly_scores(z: np.ndarray, score_window: int, component_wise: bool = False,
                   multi_scale: MultiScale | None = None) -> np.ndarray:
    """Scores from standardised errors ``[T, C]``: per channel, the fitted
    ``multi_scale`` scores or, without them, the smoothed errors (:func:`smooth_errors`);
    then ``[T, C]`` or, aggregated by the channels' maximum, ``[T]``."""
    smoothed = multi_scale.scores(z) if multi_scale is not None else smooth_errors(z, score_window)
    return smoothed if component_wise else smoothed.max(axis=1)


MAX_TAIL_SHAPE = 0.5   # a fitted tail heavier than this has no finite variance: no basis to extrapolate


def tail_threshold(train_scores: np.ndarray, risk: float, tail_share: float = 0.05) -> float:
    """Peaks-over-threshold (SPOT, Siffer et al. KDD 2017): fit a generalised Pareto
    distribution to the peaks of the training scores' top ``tail_share`` and take the score
    exceeded with probability ``risk`` per time step -- but never less than
    ``TRAIN_MARGIN`` times the largest training score, because the training scores are
    in-sample (the model was fitted to that series) and new normal data scores a little
    higher. The price: an anomaly inside the training data raises the threshold.

    The peaks are declustered by runs (Coles 2001, section 5.3.2): each run of scores above
    the tail's start counts once, by its maximum. Smoothed scores come in plateaus, whose
    tied values would otherwise be fitted as many independent exceedances. A fitted shape
    above ``MAX_TAIL_SHAPE``, or fewer than ten peaks, leaves the margin alone."""
    from scipy.stats import genpareto

    scores = np.asarray(train_scores, float)
    top = float(scores.max()) if len(scores) else 0.0
    floor = max(TRAIN_MARGIN * top, top + 1e-6)
    u = float(np.quantile(scores, 1 - tail_share)) if len(scores) else 0.0
    excess = np.array([scores[a:b].max() for a, b in segments(scores > u)]) - u
    if len(excess) < 10 or np.ptp(excess) == 0:
        return floor
    gamma, _, sigma = genpareto.fit(excess, floc=0.0)
    if gamma > MAX_TAIL_SHAPE:
        return floor
    ratio = risk * len(scores) / len(excess)
    level = u - sigma * np.log(ratio) if abs(gamma) < 1e-6 else u + sigma / gamma * (ratio ** -gamma - 1)
    return max(float(level) if np.isfinite(level) else top, floor)
