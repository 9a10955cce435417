"""Training windows cut from one or many univariate series.

Every channel of every series is an independent univariate series (MOMENT is
channel-independent). A window is ``(x [1, L], input_mask [L], y [1, H])``; a history
shorter than ``L`` is left-padded with zeros and ``input_mask = 0``. Missing values stay
NaN in ``x`` and ``y`` (the backbone masks them, the losses skip them); windows without
enough observed context or without one observed target are left out
(:func:`observed_windows`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from trace_forecast.errors import DataError

# Windows whose context is at least this share of their forecast's choose the last value's share.
LIKE_THE_FORECAST = 0.5


def left_pad(history: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The last ``length`` values of ``history``, left-padded: ``(values, input_mask)``."""
    values = np.zeros(length, dtype=np.float32)
    mask = np.zeros(length, dtype=np.float32)
    tail = history[-length:]
    if len(tail):
        values[length - len(tail) :] = tail
        mask[length - len(tail) :] = 1.0
    return values, mask


@dataclass(frozen=True)
class WindowPlan:
    """Which windows to cut: ``(series index, forecast origin)`` pairs."""

    origins: np.ndarray  # [n, 2] int64

    def __len__(self) -> int:
        return len(self.origins)


def minimum_length(horizon: int, min_context: int) -> int:
    """Shortest series that yields one training window."""
    return horizon + min_context


def plan_windows(
    lengths: Sequence[int],
    horizon: int,
    min_context: int,
    validation_fraction: float = 0.2,
    stride: int = 1,
    context_length: int | None = None,
) -> tuple[WindowPlan, WindowPlan]:
    """Split forecast origins of each series in time order into train and validation.

    An origin ``t`` forecasts ``y[t:t+H]`` from ``y[:t]``. Validation origins are those
    whose targets lie in the last ``validation_fraction`` of the series; training
    targets end before that cut, so nothing leaks from validation into training.
    A series too short for its own validation windows contributes its last window
    to validation and the rest to training.

    Windows have a full ``context_length`` of history wherever the training part of a
    series holds at least one such window (as Darts' training samples do); shorter
    series give left-padded windows with at least ``min_context`` observations.
    """
    need = minimum_length(horizon, min_context)
    train, val = [], []
    for i, n in enumerate(lengths):
        cut = n if validation_fraction <= 0 else int(round(n * (1.0 - validation_fraction)))
        full = context_length is not None and cut - horizon >= context_length
        origins = list(range(context_length if full else min_context, n - horizon + 1, stride))
        if not origins:
            continue
        if validation_fraction <= 0:
            train += [(i, o) for o in origins]
            continue
        v = [o for o in origins if o >= cut] or [origins[-1]]
        t = [o for o in origins if o + horizon <= min(cut, v[0])] or origins
        train += [(i, o) for o in t]
        val += [(i, o) for o in v]
    if not train:
        raise DataError(
            f"no series is long enough for one training window: each needs at least {need} "
            f"observations (horizon {horizon} + minimum context {min_context}), the longest has "
            f"{max(lengths, default=0)}."
        )
    as_plan = lambda rows: WindowPlan(np.asarray(rows, dtype=np.int64).reshape(-1, 2))  # noqa: E731
    return as_plan(train), as_plan(val)


def observed_windows(series: Sequence[np.ndarray], plan: WindowPlan, context_length: int, horizon: int,
                     min_context: int) -> WindowPlan:
    """The windows of ``plan`` with at least ``min_context`` observed (finite) values in their
    context and at least one observed target (``plan`` itself for complete series)."""
    if len(plan) == 0 or all(np.isfinite(s).all() for s in series):
        return plan
    counts = [np.r_[0, np.cumsum(np.isfinite(s))] for s in series]  # observed values before each step
    keep = np.ones(len(plan), dtype=bool)
    for row, (i, origin) in enumerate(plan.origins.tolist()):
        c = counts[i]
        context = c[origin] - c[max(0, origin - context_length)]
        keep[row] = context >= min_context and (horizon == 0 or c[min(origin + horizon, len(c) - 1)] > c[origin])
    return WindowPlan(plan.origins[keep])


def check_observed(series: Sequence[np.ndarray], names: Sequence[str] | None = None) -> None:
    """Raise a :class:`DataError` naming every series with no observed (finite) value."""
    empty = [i for i, s in enumerate(series) if not np.isfinite(np.asarray(s, dtype=np.float64)).any()]
    if empty:
        label = [names[i] if names is not None else f"series {i}" for i in empty]
        raise DataError(f"{', '.join(map(str, label[:5]))}{' ...' if len(label) > 5 else ''} "
                        f"{'has' if len(label) == 1 else 'have'} no observed value (all missing)")


def subsample(plan: WindowPlan, max_windows: int | None, seed: int = 0) -> WindowPlan:
    """At most ``max_windows`` windows, chosen at random but reproducibly."""
    if max_windows is None or len(plan) <= max_windows:
        return plan
    rng = np.random.default_rng(seed)
    keep = np.sort(rng.choice(len(plan), size=max_windows, replace=False))
    return WindowPlan(plan.origins[keep])


def like_the_forecast(plan: WindowPlan, lengths: Sequence[int], context_length: int,
                      share: float = LIKE_THE_FORECAST) -> np.ndarray:
    """Which windows of ``plan`` (a boolean mask) have a context of at least ``share`` of the
    context their series' forecast will read (``min(context_length, length)``, the forecast
    being made from the series' end). Where every window has its full context (series longer
    than ``context_length`` plus the horizon), that is all of them. On a short series the
    first windows see a handful of steps, where any zero-shot forecast is at its worst, and
    judged on them the last value looked better than the map the forecast actually uses
    (lynx, 74 years: ``docs/design.md``, "The last value may join the prior")."""
    if len(plan) == 0:
        return np.ones(0, dtype=bool)
    reach = np.minimum(np.asarray(lengths, dtype=np.int64), context_length)[plan.origins[:, 0]]
    context = np.minimum(plan.origins[:, 1], context_length)
    return context >= share * reach


def series_scale(values: np.ndarray) -> float:
    """A series' unit for weighting its windows: its standard deviation over every value
    given (``nan`` where it has none; ``0`` for a constant series)."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.std()) if len(values) else float("nan")


class WindowDataset(Dataset):
    """Windows of ``context_length`` history (and ``horizon`` future) from univariate series.

    A forecasting window is ``(x [1, L], input_mask [L], y [1, H], scale)``: ``scale`` is
    its series' unit (:func:`series_scale`), with which the loss weighs the window's errors
    in the series' own units (:func:`trace_forecast.losses.normalized_mse`)."""

    def __init__(self, series: Sequence[np.ndarray], plan: WindowPlan, context_length: int, horizon: int):
        self.series = [np.asarray(s, dtype=np.float32) for s in series]
        self.plan = plan
        self.context_length = context_length
        self.horizon = horizon
        self.scales = np.array([series_scale(s) for s in self.series], dtype=np.float32)

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, idx: int):
        i, origin = self.plan.origins[idx]
        s = self.series[i]
        x, mask = left_pad(s[:origin], self.context_length)
        x_t = torch.from_numpy(x)[None, :]
        m_t = torch.from_numpy(mask)
        if self.horizon == 0:
            return x_t, m_t
        y = torch.from_numpy(s[origin : origin + self.horizon].copy())[None, :]
        return x_t, m_t, y, torch.tensor(self.scales[i])


@dataclass(frozen=True)
class WindowSets:
    """Training and validation windows of one fit, plus every training and validation origin (uncapped)."""

    train: WindowDataset
    val: WindowDataset
    all_train: WindowPlan
    all_val: WindowPlan


def make_window_sets(
    series: Sequence[np.ndarray],
    context_length: int,
    horizon: int,
    min_context: int,
    validation_fraction: float,
    stride: int,
    max_windows: int | None,
    seed: int,
) -> WindowSets:
    """Plan, split in time order, and cap (``max_windows`` for training, a quarter of it
    for validation) the windows of ``series``; ``horizon=0`` gives reconstruction windows."""
    check_observed(series)
    train_plan, val_plan = plan_windows([len(s) for s in series], horizon, min_context, validation_fraction, stride,
                                        context_length)
    kept = [observed_windows(series, p, context_length, horizon, min_context) for p in (train_plan, val_plan)]
    if kept[0] is not train_plan or kept[1] is not val_plan:  # missing values left some windows out
        planned = set(train_plan.origins[:, 0].tolist()) | set(val_plan.origins[:, 0].tolist())
        train_plan, val_plan = kept
        without = sorted(planned - set(train_plan.origins[:, 0].tolist()) - set(val_plan.origins[:, 0].tolist()))
        if not len(train_plan) or without:
            raise DataError(
                f"series {without[:5] or list(range(len(series)))[:5]} {'have' if len(without) != 1 else 'has'} no "
                f"window with {min_context} observed values of context and an observed target: too much is "
                "missing to learn from them")
    val_cap = None if max_windows is None else max(1, max_windows // 4)
    return WindowSets(
        WindowDataset(series, subsample(train_plan, max_windows, seed), context_length, horizon),
        WindowDataset(series, subsample(val_plan, val_cap, seed + 1), context_length, horizon),
        train_plan,
        val_plan,
    )


def steps_per_run(n_windows: int, batch_size: int, max_epochs: int) -> int:
    """Optimiser steps of a run (what AdaLoRA's allocation schedule needs up front)."""
    return max_epochs * -(-n_windows // batch_size)
