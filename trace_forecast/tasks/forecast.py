"""Forecasting as a task on plain arrays: fit a network on many series, predict from
histories, and keep the out-of-sample residuals that give prediction intervals
(:mod:`trace_forecast.tasks.calibration`).

The sktime forecaster is a thin translation layer over this module.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch

from trace_forecast.backbone.glitches import target_without_glitches
from trace_forecast.backbone.moment import MomentBackbone
from trace_forecast.engine import TrainSettings, WindowDataset, fit_network, subsample
from trace_forecast.engine.batching import inference_batch_size
from trace_forecast.engine.devices import torch_device
from trace_forecast.engine.memory import check_training_memory
from trace_forecast.engine.precision import prediction_autocast
from trace_forecast.engine.recipe import ClosedFormHeadStart
from trace_forecast.engine.threads import limit_worker_threads
from trace_forecast.engine.trainer import FitResult
from trace_forecast.engine.windows import (
    WindowPlan,
    WindowSets,
    left_pad,
    like_the_forecast,
    make_window_sets,
    steps_per_run,
)
from trace_forecast.errors import (
    DataError,
    ShortSeriesWarning,
    UncalibratedIntervalsWarning,
)
from trace_forecast.heads import ridge as head_start_sizes  # read at each fit (tests shrink them)
from trace_forecast.network import NetworkSpec, TraceNetwork, build_network
from trace_forecast.tasks.calibration import (  # noqa: F401  (CALIBRATION_WINDOWS: re-exported)
    CALIBRATION_WINDOWS,
    FIT_CALIBRATION_WINDOWS,
    ResidualPool,
    naive_residuals,
    out_of_sample,
    spread_in_time,
)

# Context of a training window: at least one full patch. RevIN estimates each window's
# scale from its context; from one or two values the normalised targets explode (a
# 5-point series once forecast 195 for a level of 120).
MIN_CONTEXT = 8
# Zero-shot fits forecast this many of the series' windows (all unseen) for interval residuals.
ZERO_SHOT_RESIDUAL_WINDOWS = 2048
# A series calibrates its intervals on its own held-out windows when it has at least this many.
MIN_HELD_OUT_WINDOWS = 8
# Below one patch, series down to this much context still train, with a warning.
MIN_CONTEXT_FLOOR = 4


def learnable_context(series: list[np.ndarray], horizon: int, name: str = "y", zero_shot: bool = False,
                      zero_shot_option: str | None = None) -> int:
    """The minimum context of training windows for ``series`` at ``horizon``.

    ``MIN_CONTEXT`` (one patch) when the longest series has ``horizon + 8`` observations;
    down to ``MIN_CONTEXT_FLOOR`` with a :class:`ShortSeriesWarning` for shorter series;
    below that, a :class:`DataError` naming the minimum. A ``zero_shot`` forecast learns
    nothing, so shorter series only need ``MIN_CONTEXT_FLOOR + 1`` observations (context, and
    one target to calibrate on); its intervals are calibrated as far as the data reach
    (:func:`zero_shot_forecast`). ``zero_shot_option`` (how the caller asks for a zero-shot
    forecast) joins the error where the series is long enough for one.
    """
    longest = max((len(s) for s in series), default=0)
    if longest >= horizon + MIN_CONTEXT:
        return MIN_CONTEXT
    if longest >= horizon + MIN_CONTEXT_FLOOR:
        warnings.warn(
            f"{name} is short for a {horizon}-step forecast: the longest series has {longest} observations, "
            f"fewer than the {horizon + MIN_CONTEXT} that give every training window a full patch of context; "
            f"training windows use {longest - horizon} values of context and the forecast is unreliable",
            ShortSeriesWarning,
            stacklevel=3,
        )
        return longest - horizon
    if zero_shot:
        if longest > MIN_CONTEXT_FLOOR:
            return min(MIN_CONTEXT, longest - 1)
        raise DataError(f"{name} is too short for a zero-shot forecast: it needs at least {MIN_CONTEXT_FLOOR + 1} "
                        f"observations ({MIN_CONTEXT_FLOOR} of context and one to calibrate on), the longest series "
                        f"has {longest}")
    raise DataError(
        f"{name} is too short to learn a {horizon}-step forecast: it needs at least {horizon + MIN_CONTEXT_FLOOR} "
        f"observations ({MIN_CONTEXT_FLOOR} of context plus {horizon} targets; {horizon + MIN_CONTEXT} for a full "
        f"patch of context), the longest series has {longest}"
        + (f"; a zero-shot forecast ({zero_shot_option}) needs only {MIN_CONTEXT_FLOOR + 1}"
           if zero_shot_option and longest > MIN_CONTEXT_FLOOR else "")
    )


@dataclass
class ForecastFit:
    """A fitted forecasting network and the out-of-sample residuals used for intervals."""

    result: FitResult
    residuals: ResidualPool

    @property
    def network(self) -> TraceNetwork:
        return self.result.network


@torch.inference_mode()
def predict_normalized(
    network: TraceNetwork, histories: list[np.ndarray], batch_size: int | None = None, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forecast each history: ``(pred [n, H] in RevIN space, mean [n], std [n])``
    (``batch_size``: :func:`~trace_forecast.engine.batching.inference_batch_size` when ``None``)."""
    limit_worker_threads()
    length = network.spec.context_length
    dev = torch_device(device)
    batch_size = batch_size or inference_batch_size(dev)
    home = next(network.parameters()).device
    if home != dev:
        network.to(dev)
    if network.training:
        network.eval()
    preds, means, stds = [], [], []
    with network.inference(), prediction_autocast(dev):
        for start in range(0, len(histories), batch_size):
            chunk = [left_pad(np.asarray(h, dtype=np.float32), length) for h in histories[start : start + batch_size]]
            x = torch.from_numpy(np.stack([c[0] for c in chunk]))[:, None, :].to(dev)
            mask = torch.from_numpy(np.stack([c[1] for c in chunk])).to(dev)
            pred, mean, std = network.forecast_normalized(x, mask)
            preds.append(pred[:, 0].float().cpu().numpy())
            means.append(mean[:, 0, 0].float().cpu().numpy())
            stds.append(std[:, 0, 0].float().cpu().numpy())
    if home != dev:
        network.to(home)
    return np.concatenate(preds), np.concatenate(means), np.concatenate(stds)


def window_residuals(network: TraceNetwork, dataset: WindowDataset, device: str = "cpu") -> np.ndarray:
    """Signed RevIN-space errors ``y - pred`` of every window in ``dataset``; NaN where a target
    is missing or a glitch (:func:`~trace_forecast.backbone.glitches.target_without_glitches`:
    one glitch in the pool would otherwise set the variances by itself)."""
    if len(dataset) == 0:
        return np.zeros((0, network.spec.horizon), dtype=np.float32)
    histories, targets = [], []
    for i, origin in dataset.plan.origins:
        s = dataset.series[i]
        histories.append(s[:origin][-dataset.context_length :])
        target = s[origin : origin + dataset.horizon]  # shorter at a series' end: missing targets after it
        targets.append(np.pad(target.astype(np.float32), (0, dataset.horizon - len(target)), constant_values=np.nan))
    pred, mean, std = predict_normalized(network, histories, device=device)
    padded = [left_pad(np.asarray(h, dtype=np.float32), dataset.context_length) for h in histories]
    clean = target_without_glitches(torch.from_numpy(np.stack([p[0] for p in padded]))[:, None, :],
                                    torch.from_numpy(np.stack([p[1] for p in padded])),
                                    torch.from_numpy(np.stack(targets).astype(np.float32))[:, None, :],
                                    network.patch_len)[:, 0].numpy()
    y = (clean - mean[:, None]) / std[:, None]
    return (y - pred).astype(np.float32)


def residual_pool(network: TraceNetwork, series: list[np.ndarray], origins: np.ndarray,
                  device: str = "cpu") -> ResidualPool:
    """The residuals of the windows at ``origins`` (``[n, 2]`` series, origin), with their series."""
    plan = WindowPlan(np.asarray(origins, dtype=np.int64).reshape(-1, 2))
    dataset = WindowDataset(series, plan, network.spec.context_length, network.spec.horizon)
    return ResidualPool(window_residuals(network, dataset, device), plan.origins[:, 0].copy())


def fit_forecast(
    series: list[np.ndarray],
    backbone: MomentBackbone,
    spec: NetworkSpec,
    settings: TrainSettings,
    validation_fraction: float = 0.2,
    max_windows: int | None = None,
    stride: int = 1,
    min_context: int = MIN_CONTEXT,
    init: TraceNetwork | None = None,
    head_init: str = "ridge",
    fit_strategy: str = "fine-tune",
) -> ForecastFit:
    """Fit a forecasting network on univariate ``series`` (one model for all of them).

    ``init`` continues training an already adapted network (pretraining, updates)
    instead of building a new one from ``backbone``. ``head_init="ridge"`` solves the
    head's output layer in closed form on up to ``RIDGE_WINDOWS`` training windows
    before fine-tuning (LP-FT); ``"default"`` keeps its random/persistence start.
    ``fit_strategy="zero-shot"`` trains nothing (:func:`zero_shot_forecast`).
    """
    seed = settings.random_state or 0
    if fit_strategy == "zero-shot" and \
            sum(max(0, len(s) - spec.horizon - min_context + 1) for s in series) < MIN_HELD_OUT_WINDOWS:
        return zero_shot_forecast(series, backbone, spec, settings, None, min_context)  # too few full windows
    sets = make_window_sets(series, spec.context_length, spec.horizon, min_context, validation_fraction, stride,
                            max_windows, seed)
    if fit_strategy == "zero-shot":
        return zero_shot_forecast(series, backbone, spec, settings, sets)
    train_ds, val_ds = sets.train, sets.val
    head_start = None
    check_training_memory(backbone.config, spec.context_length, spec.horizon, settings.batch_size,
                          settings.accelerator()[0], spec.future_patches)  # before anything large is allocated
    if init is None:
        steps = steps_per_run(len(train_ds), settings.batch_size, settings.max_epochs)
        spec.total_steps = steps if settings.max_steps < 0 else settings.max_steps
        network = build_network(backbone, spec, seed=settings.random_state)
        if head_init == "ridge":
            # Forward passes only: the closed-form head may see more windows than training does.
            ridge_rows = subsample(sets.all_train, max(head_start_sizes.RIDGE_WINDOWS, len(train_ds)), seed + 2)
            ridge_val = subsample(sets.all_val, max(head_start_sizes.RIDGE_VALIDATION_WINDOWS, len(val_ds)), seed + 3)
            alike = like_the_forecast(ridge_rows, [len(s) for s in series], spec.context_length)
            head_start = ClosedFormHeadStart(
                WindowDataset(series, ridge_rows, spec.context_length, spec.horizon),
                validation=WindowDataset(series, ridge_val, spec.context_length, spec.horizon),
                like_the_forecast=None if alike.all() else np.flatnonzero(alike))
    else:
        network = init
    result = fit_network(network, train_ds, val_ds if len(val_ds) else None, settings, head_start=head_start)
    return ForecastFit(result, calibration_pool(result.network, series, sets, settings.device))


def calibration_pool(network: TraceNetwork, series: list[np.ndarray], sets: WindowSets,
                     device: str = "cpu") -> ResidualPool:
    """Interval calibration at fit: the residuals of the held-out windows that no training
    window repeats, spread in time and over every series. Series with fewer than
    ``MIN_HELD_OUT_WINDOWS`` such windows are calibrated on the naive forecast's errors,
    with a warning (in-sample residuals, or one or two windows, gave intervals of almost
    no width)."""
    held_out = out_of_sample(sets.all_val.origins, sets.all_train.origins)
    counts = np.bincount(held_out[:, 0], minlength=len(series))
    missing = [i for i in range(len(series)) if counts[i] < MIN_HELD_OUT_WINDOWS]
    held_out = held_out[np.isin(held_out[:, 0], missing, invert=True)]
    pool = residual_pool(network, series, spread_in_time(held_out, FIT_CALIBRATION_WINDOWS), device)
    if not missing:
        return pool
    why = ("nothing is held out (validation_fraction=0)" if len(sets.all_val) == 0 else
           f"{len(missing)} of {len(series)} series are too short to hold out {MIN_HELD_OUT_WINDOWS} windows after "
           "their training windows")
    warnings.warn(
        f"{why}, so prediction intervals cannot be calibrated on the model's own held-out errors; those series' "
        "intervals use the naive (last value) forecast's errors on their own windows instead.",
        UncalibratedIntervalsWarning, stacklevel=3)
    horizon = network.spec.horizon  # every origin with two values of context: the naive forecast needs no more
    own = np.array([(i, o) for i in missing for o in range(2, len(series[i]) - horizon + 1)], dtype=np.int64)
    own = spread_in_time(own.reshape(-1, 2), FIT_CALIBRATION_WINDOWS)
    naive = ResidualPool(naive_residuals(series, own, network.spec.context_length, horizon), own[:, 0].copy())
    return pool.concat(naive)


def zero_shot_forecast(
    series: list[np.ndarray], backbone: MomentBackbone, spec: NetworkSpec, settings: TrainSettings,
    sets: WindowSets | None, min_context: int = MIN_CONTEXT,
) -> ForecastFit:
    """A forecasting network that trains nothing: the head reads the pretrained backbone's
    own prediction of the hidden future patches (:meth:`ReconstructionForecastHead.prior_weight`,
    MOMENT's zero-shot route), averaged with its forecast of the negated series, negated back
    (:data:`~trace_forecast.heads.reconstruction.SIGN_SYMMETRIC_ZERO_SHOT`). Residuals for
    intervals come from the windows of ``sets``, none of which the model has seen, so every
    window is out of sample.

    ``sets=None``: the series hold fewer than ``MIN_HELD_OUT_WINDOWS`` windows of the horizon
    (or none), and the residuals come from :func:`_short_series_pool`."""
    from trace_forecast.heads import reconstruction
    from trace_forecast.parameter_count import parameter_report

    start = time.perf_counter()
    spec = replace(spec, adapter="none", sign_symmetric=reconstruction.SIGN_SYMMETRIC_ZERO_SHOT)
    network = build_network(backbone, spec, seed=settings.random_state)
    reconstruction.use_zero_shot_map(network)
    if sets is not None:
        every = np.concatenate([sets.all_train.origins, sets.all_val.origins])
        residuals = residual_pool(network, series, spread_in_time(every, ZERO_SHOT_RESIDUAL_WINDOWS), settings.device)
    else:
        residuals = _short_series_pool(network, series, min_context, settings.device)
    result = FitResult(network=network.eval(), train_loss=[], val_loss=[], selection=[],
                       parameters=parameter_report(network), fit_seconds=time.perf_counter() - start, steps=0)
    return ForecastFit(result, residuals)


def _short_series_pool(network: TraceNetwork, series: list[np.ndarray], min_context: int,
                       device: str = "cpu") -> ResidualPool:
    """Calibration of a zero-shot forecast on series too short for ``MIN_HELD_OUT_WINDOWS``
    windows of its horizon: the residuals of every window with ``min_context`` values of
    context, their targets cut where the series end. A step that fewer than
    ``MIN_HELD_OUT_WINDOWS`` of them reach is calibrated on the naive (last value) forecast's
    errors instead, as :func:`calibration_pool` does for short series, and a step that not
    even those reach is left without residuals (its intervals raise); both with a warning."""
    horizon = network.spec.horizon

    def origins(first: int) -> np.ndarray:
        every = np.array([(i, o) for i, s in enumerate(series) for o in range(first, len(s))], dtype=np.int64)
        return spread_in_time(every.reshape(-1, 2), ZERO_SHOT_RESIDUAL_WINDOWS)

    model = residual_pool(network, series, origins(min_context), device)
    by_model = np.isfinite(model.residuals).sum(axis=0) >= MIN_HELD_OUT_WINDOWS
    if by_model.all():
        return model
    naive_origins = origins(2)  # the naive forecast needs two values of context
    padded = [np.concatenate([s, np.full(horizon, np.nan, dtype=np.float32)]) for s in series]
    naive = naive_residuals(padded, naive_origins, network.spec.context_length, horizon)
    by_naive = ~by_model & (np.isfinite(naive).sum(axis=0) >= MIN_HELD_OUT_WINDOWS)
    model.residuals[:, ~by_model] = np.nan
    naive[:, ~by_naive] = np.nan
    calibrated = np.flatnonzero(by_model | by_naive)
    reach = int(calibrated[-1]) + 1 if len(calibrated) else 0
    what = []
    if by_naive.any():
        what.append(f"steps {int(np.argmin(by_model)) + 1} to {reach} are calibrated on the naive (last value) "
                    "forecast's errors instead")
    if reach < horizon:
        what.append(f"intervals beyond step {reach} raise an error (point forecasts are not affected)")
    warnings.warn(f"the series are too short to hold out {MIN_HELD_OUT_WINDOWS} windows of the zero-shot forecast "
                  f"at every step: {'; '.join(what)}", UncalibratedIntervalsWarning, stacklevel=4)
    return model.concat(ResidualPool(naive, naive_origins[:, 0].copy()))


def realised_residuals(
    network: TraceNetwork,
    series: list[np.ndarray],
    scored_lengths: list[int],
    limit: int,
    min_context: int = MIN_CONTEXT,
    device: str = "cpu",
) -> ResidualPool:
    """Residuals of the windows whose targets became fully observed since ``series`` had
    ``scored_lengths`` values: origins ``o`` with ``old - H < o <= new - H``, the newest
    ``limit`` of each series, oldest first. Online conformal calibration: these are
    forecasts the fitted model makes of data it never saw."""
    horizon = network.spec.horizon
    origins = realised_origins(series, scored_lengths, horizon, limit, min_context)
    if not len(origins):
        return ResidualPool.empty(horizon)
    return residual_pool(network, series, origins, device)


def realised_origins(series: list[np.ndarray], scored_lengths: list[int], horizon: int, limit: int,
                     min_context: int = MIN_CONTEXT) -> np.ndarray:
    """Origins ``[n, 2]`` (series, origin) of the windows :func:`realised_residuals` scores."""
    pairs = []
    for i, (s, old) in enumerate(zip(series, scored_lengths, strict=True)):
        last = len(s) - horizon
        first = max(old - horizon + 1, min_context, last - limit + 1)
        pairs.extend((i, o) for o in range(first, last + 1))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)
