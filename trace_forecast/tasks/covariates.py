"""Covariates as a task on arrays: fit the covariate head on a fitted forecaster's
residuals, and correct its forecasts (:mod:`trace_forecast.heads.covariates`).

Each target series (one channel of one instance) comes with its instance's covariates
``[T, K]`` on the same time steps and its column's index; the network is not touched.
"""

from __future__ import annotations

import numpy as np

from trace_forecast.backbone.glitches import arrays_without_glitches
from trace_forecast.engine.windows import (
    WindowPlan,
    observed_windows,
    plan_windows,
    subsample,
)
from trace_forecast.errors import DataError
from trace_forecast.heads.covariates import (
    GLITCH_RUN,
    PAST_STEPS,
    CovariateMap,
    features,
    fit_column,
    mixer_inputs,
)
from trace_forecast.network import TraceNetwork
from trace_forecast.tasks.calibration import ResidualPool
from trace_forecast.tasks.forecast import MIN_CONTEXT, predict_normalized

# Windows whose residuals fit the covariate head, and that choose its penalty.
COVARIATE_WINDOWS = 4096
COVARIATE_VALIDATION_WINDOWS = 1024


def features_at(covariates: list[np.ndarray], origins: np.ndarray, context_length: int, horizon: int,
                future_known: bool, past_only: tuple[int, ...] = ()) -> np.ndarray:
    """Features ``[n, F]`` of the windows at ``origins`` (``[n, 2]`` series, origin)."""
    if not len(origins):
        known = covariates[0].shape[1] - len(past_only) if covariates and future_known else 0
        width = covariates[0].shape[1] * PAST_STEPS + known * horizon if covariates else 0
        return np.zeros((0, width))
    pairs = origins.tolist()
    contexts = [covariates[i][max(0, o - context_length) : o] for i, o in pairs]
    return features(contexts, [covariates[i][o : o + horizon] if future_known else None for i, o in pairs], past_only)


def head_inputs(covariate_features: np.ndarray, pred: np.ndarray, histories: list[np.ndarray], mean: np.ndarray,
                std: np.ndarray, reads_forecast: bool = True) -> np.ndarray:
    """The covariate head's inputs for forecasts ``pred [n, H]`` (RevIN space, with the
    statistics ``mean``/``std [n]`` of their ``histories``); a glitch among the recent values,
    read on the whole history as the network reads it, is a missing value."""
    clean = arrays_without_glitches([np.asarray(h, np.float64)[:, None] for h in histories], GLITCH_RUN)
    recent = np.stack([np.pad(h[-PAST_STEPS:, 0], (PAST_STEPS - min(len(h), PAST_STEPS), 0), constant_values=np.nan)
                       for h in clean]) if len(histories) else np.zeros((0, PAST_STEPS))
    return mixer_inputs(covariate_features, pred, (recent - mean[:, None]) / std[:, None], reads_forecast)


def check_covariates(covariates: list[np.ndarray], series: list[np.ndarray], name: str = "X") -> None:
    """Covariates on the same steps as their series, numeric and without infinite values."""
    for i, (cov, s) in enumerate(zip(covariates, series, strict=True)):
        if cov.ndim != 2 or len(cov) != len(s):
            raise DataError(f"{name} must have one row per time step of y: series {i} has {len(s)} steps, "
                            f"{name} {len(cov)} rows")
        if np.isinf(cov).any():
            raise DataError(f"{name} contains infinite values; replace them (NaN marks a missing value)")


def _covariate_plans(series: list[np.ndarray], context_length: int, horizon: int, validation_fraction: float,
                    seed: int = 0) -> tuple[WindowPlan, WindowPlan]:
    """The windows that fit the covariate head and those that choose its penalty."""
    train, val = plan_windows([len(s) for s in series], horizon, MIN_CONTEXT, validation_fraction, 1, context_length)
    train, val = (observed_windows(series, p, context_length, horizon, MIN_CONTEXT) for p in (train, val))
    return subsample(train, COVARIATE_WINDOWS, seed), subsample(val, COVARIATE_VALIDATION_WINDOWS, seed + 1)


def window_data(network: TraceNetwork, series: list[np.ndarray], covariates: list[np.ndarray], origins: np.ndarray,
                future_known: bool, past_only: tuple[int, ...] = (), reads_forecast: bool = True,
                device: str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """``(head inputs [n, F], the network's RevIN-space residuals [n, H])`` of the windows at ``origins``."""
    spec = network.spec
    histories = [series[i][max(0, o - spec.context_length) : o] for i, o in origins.tolist()]
    if not histories:
        width = features_at(covariates, origins, spec.context_length, spec.horizon, future_known, past_only).shape[1]
        return np.zeros((0, width + (spec.horizon + PAST_STEPS if reads_forecast else 0))), np.zeros((0, spec.horizon))
    targets = np.stack([series[i][o : o + spec.horizon] for i, o in origins.tolist()])
    pred, mean, std = predict_normalized(network, histories, device=device)
    features = features_at(covariates, origins, spec.context_length, spec.horizon, future_known, past_only)
    inputs = head_inputs(features, pred, histories, mean, std, reads_forecast)
    return inputs, (targets - mean[:, None]) / std[:, None] - pred


def corrected_residuals(covariate_map: CovariateMap, network: TraceNetwork, series: list[np.ndarray],
                        covariates: list[np.ndarray], columns: np.ndarray, origins: np.ndarray,
                        device: str = "cpu") -> ResidualPool:
    """The residuals of the covariate-corrected forecasts at ``origins`` (``[n, 2]`` series,
    origin), for online interval calibration."""
    origins = np.asarray(origins, dtype=np.int64).reshape(-1, 2)
    inputs, residuals = window_data(network, series, covariates, origins, covariate_map.future_known,
                                    covariate_map.past_only, covariate_map.reads_forecast, device)
    if len(origins):
        residuals = residuals - covariate_map.correction(inputs, np.asarray(columns)[origins[:, 0]])
    return ResidualPool(residuals.astype(np.float32), origins[:, 0].copy())


def fit_covariate_map(network: TraceNetwork, series: list[np.ndarray], covariates: list[np.ndarray],
                      columns: np.ndarray, n_columns: int, validation_fraction: float, future_known: bool = True,
                      seed: int = 0, device: str = "cpu", reads_forecast: bool = True,
                      past_only: tuple[int, ...] = ()) -> tuple[CovariateMap, ResidualPool]:
    """The covariate head of a fitted forecasting ``network``: per target column, a ridge map
    from each window's covariate features to the network's RevIN-space residual, its penalty
    chosen on the windows of the last ``validation_fraction`` of each series. With
    ``future_known``, the covariates ``past_only`` are read up to the origin only.

    Also returns the corrected forecasts' residuals on those validation windows, to calibrate
    intervals on (empty where the head stayed zero: the forecast's own calibration stands)."""
    check_covariates(covariates, series)
    spec = network.spec
    longest = max((len(s) for s in series), default=0)
    if longest < spec.horizon + MIN_CONTEXT:
        raise DataError(f"covariates need a window of {spec.horizon + MIN_CONTEXT} observations to learn from "
                        f"({MIN_CONTEXT} of context plus the {spec.horizon}-step horizon), the longest series has "
                        f"{longest}: fit without them, or forecast fewer steps")
    train, val = _covariate_plans(series, spec.context_length, spec.horizon, validation_fraction, seed)

    def data(plan: WindowPlan):
        return window_data(network, series, covariates, plan.origins, future_known, past_only, reads_forecast, device)

    (x_train, r_train), (x_val, r_val) = data(train), data(val)
    col_train, col_val = columns[train.origins[:, 0]], columns[val.origins[:, 0]]
    n_features = x_train.shape[1]
    weights = np.zeros((n_columns, n_features, spec.horizon))
    bias = np.zeros((n_columns, spec.horizon))
    alphas: list[float | None] = []
    for c in range(n_columns):
        w, b, alpha = fit_column(x_train[col_train == c], r_train[col_train == c], x_val[col_val == c],
                                 r_val[col_val == c])
        weights[c], bias[c] = w, b
        alphas.append(alpha)
    head = CovariateMap(weights.astype(np.float32), bias.astype(np.float32), alphas, future_known, reads_forecast,
                        tuple(past_only) if future_known else ())
    if not head.active or not len(val):
        return head, ResidualPool.empty(spec.horizon)
    corrected = r_val - head.correction(x_val, col_val)
    return head, ResidualPool(corrected.astype(np.float32), val.origins[:, 0].copy())


def corrections(covariate_map: CovariateMap, contexts: list[np.ndarray], futures: list[np.ndarray] | None,
                columns: np.ndarray, pred: np.ndarray, histories: list[np.ndarray], mean: np.ndarray,
                std: np.ndarray) -> np.ndarray:
    """RevIN-space corrections ``[n, H]`` of the forecasts ``pred`` (RevIN space, from
    ``histories`` with statistics ``mean``/``std``) whose covariates are ``contexts``
    (``[L, K]`` up to the origin) and ``futures`` (``[H, K]`` over the horizon)."""
    known = futures if covariate_map.future_known and futures is not None else [None] * len(contexts)
    inputs = head_inputs(features(contexts, known, covariate_map.past_only), pred, histories, mean, std,
                         covariate_map.reads_forecast)
    return covariate_map.correction(inputs, np.asarray(columns))
