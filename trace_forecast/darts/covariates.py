"""Darts' past and future covariates for :class:`~trace_forecast.darts.TraceModel`.

The same covariate head as the sktime forecaster's (:mod:`trace_forecast.heads.covariates`,
``docs/design.md``, "Covariates"): the network is fine-tuned on the targets alone, then a
ridge map per target component, fitted on the network's residuals, reads the covariates
around each forecast origin and corrects the forecast. Past covariates are read up to the
origin; future covariates up to the origin and over the output chunk.

This module turns Darts' ``TimeSeries`` into the head's arrays (each series' covariates on
its own time steps) and the module's batches into the head's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from darts import TimeSeries

from trace_forecast.darts.validation import as_list
from trace_forecast.errors import DataError
from trace_forecast.heads.covariates import CovariateMap
from trace_forecast.network import TraceNetwork
from trace_forecast.tasks.covariates import corrections, fit_covariate_map


def _on_steps(covariates: TimeSeries, index: pd.Index, name: str) -> np.ndarray:
    """``covariates``' values on the time steps ``index`` ``[len(index), K]`` (NaN where it has none)."""
    values = covariates.values(copy=False)
    if not np.issubdtype(values.dtype, np.floating):
        raise DataError(f"`{name}` must hold floating-point values, got dtype {values.dtype}")
    if np.isinf(values).any():
        raise DataError(f"`{name}` contains infinite values; replace them (NaN marks a missing value)")
    return pd.DataFrame(values.astype(np.float64), index=covariates.time_index).reindex(index).to_numpy()


def aligned(series: Sequence[TimeSeries], past: Sequence[TimeSeries] | None, future: Sequence[TimeSeries] | None
            ) -> tuple[list[np.ndarray], tuple[int, ...]]:
    """Each series' covariates on its time steps, past ones first: ``([T, Kp + Kf]`` per
    series, the indices of the past ones ``)``."""
    out = []
    for i, ts in enumerate(series):
        parts = []
        for group, name in ((past, "past_covariates"), (future, "future_covariates")):
            if group is not None:
                parts.append(_on_steps(group[i], ts.time_index, f"{name}[{i}]"))
        out.append(np.concatenate(parts, axis=1))
    n_past = 0 if past is None else past[0].width
    return out, tuple(range(n_past))


def fit_head(network: TraceNetwork, series: TimeSeries | Sequence[TimeSeries], past_covariates, future_covariates,
             validation_fraction: float, seed: int) -> tuple[CovariateMap, np.ndarray]:
    """The covariate head of a fitted network on Darts series and their covariates (the
    encoders' covariates included), and the corrected forecasts' residuals ``[n, H]`` on its
    validation windows (empty where the head stayed zero), to calibrate quantiles on."""
    items = as_list(series)
    past = None if past_covariates is None else as_list(past_covariates)
    future = None if future_covariates is None else as_list(future_covariates)
    covariates, past_only = aligned(items, past, future)
    arrays, covs, columns = [], [], []
    for ts, cov in zip(items, covariates, strict=True):
        values = ts.values(copy=False)
        for c in range(ts.width):
            arrays.append(values[:, c].astype(np.float32))
            covs.append(cov)
            columns.append(c)
    device = "cuda" if next(network.parameters()).is_cuda else "cpu"
    head, validation = fit_covariate_map(network, arrays, covs, np.asarray(columns), items[0].width, validation_fraction,
                                         future_known=future is not None, seed=seed, device=device,
                                         past_only=past_only if future is not None else ())
    return head, validation.residuals


def batch_corrections(covariate_map: CovariateMap, past_target: torch.Tensor, past_covariates: torch.Tensor | None,
                      historic_future: torch.Tensor | None, future: torch.Tensor | None, pred: torch.Tensor,
                      mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """RevIN-space corrections ``[B*C, H]`` of a batch's forecasts ``pred [B*C, H]`` (windows
    in :func:`~trace_forecast.darts.module.channel_windows`' order) from its covariates:
    ``past_covariates [B, L, Kp]``, ``historic_future [B, L, Kf]`` and ``future [B, H, Kf]``."""
    b, _, c = past_target.shape
    context = torch.cat([t for t in (past_covariates, historic_future) if t is not None], dim=2)
    context = context.detach().float().cpu().numpy().astype(np.float64)
    futures = None
    if covariate_map.future_known:
        if future is None:
            raise DataError("the model was fitted with future covariates: predict needs them for the forecast steps")
        known = future.detach().float().cpu().numpy().astype(np.float64)
        n_past = 0 if past_covariates is None else past_covariates.shape[2]
        pad = np.full((b, known.shape[1], n_past), np.nan)  # past covariates have no future
        futures = [f for f in np.concatenate([pad, known], axis=2) for _ in range(c)]
    contexts = [x for x in context for _ in range(c)]
    histories = list(past_target.detach().float().cpu().numpy().transpose(0, 2, 1).reshape(b * c, -1))
    as_numpy = [t.detach().float().cpu().numpy().reshape(b * c, -1) for t in (pred, mean, std)]
    out = corrections(covariate_map, contexts, futures, np.tile(np.arange(c), b), as_numpy[0], histories,
                      as_numpy[1][:, 0], as_numpy[2][:, 0])
    return torch.as_tensor(out, dtype=pred.dtype, device=pred.device)
