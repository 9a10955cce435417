"""How the closed-form head start should use few or many windows: rules compared on ETTh1.

``python -m benchmarks.head_start_rules`` writes ``results/head_start_rules.json``.

The temporal map's inputs (frozen embedded backbone, ``future_patches="auto"``, rolled out
past 192 steps) are computed once for every training window and every test window (every
5th on ETTh1); each rule then solves the map in closed form on the data-size benchmark's
slices (ETTh1, L = 512: the last 5, 10, 25 or 100 % of the training windows; ILI with its
standard L = 104: 25 and 100 %; selecting on their last 20 %, ``benchmarks/data_size.py``)
and is scored on the test windows. No gradient step is
taken: this isolates the start that fine-tuning begins from (and keeps, where validation
prefers it). The rules:

- ``zero-shot map``: the backbone's own prediction, nothing fitted;
- ``ridge, penalty 1``: the ridge fit toward zero on the training windows (the start
  without validation windows);
- ``target chosen on validation (before)``: the rule before the data-size work: the ridge
  target (zero or the zero-shot map) with the smaller validation error, penalty 1, solved
  again with the validation windows, windows unweighted;
- ``blend chosen on validation (default)``: :func:`trace_forecast.heads.ridge.ridge_solve`:
  penalty, blend with the zero-shot map and the fit's weighting of windows (alike, nearly
  constant ones less; or by their squared scale in their series) chosen on validation by
  the error in each series' units, solved again with the validation windows;
- ``blend chosen on validation, windows alike``: the fit weighs windows alike only;
- ``blend chosen on validation, all in series units``: the fit weighs windows in series
  units only;
- ``blend chosen on validation, unweighted``: every window weighs the same, in the choice too;
- ``RevIN ridge``: the data-size benchmark's linear baseline on the raw history.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from benchmarks.data_size import revin_ridge, validation_cut
from benchmarks.harness import Record, main
from trace_forecast.datasets import rolling_windows
from trace_forecast.heads.ridge import (
    DEFAULT_ALPHA,
    MIN_VALIDATION_WINDOWS,
    RidgeStatistics,
    blend,
    choose_head_start,
    ridge_solution,
    squared_error,
)
from trace_forecast.losses import TARGET_CLIP, WEIGHTINGS, window_weights

DATASETS = {"ETTh1": (512, (0.05, 0.1, 0.25, 1.0), (96, 192, 336, 720), 5),
            "ILI (L = 104)": (104, (0.25, 1.0), (24, 36, 48, 60), 1)}  # lookback, fractions, horizons, test stride


def features(horizon: int, histories: np.ndarray, lookback: int, batch: int = 256):
    """Map inputs ``[n, n_in]`` and RevIN statistics of ``histories [n, L]`` (bf16 where native)."""
    from trace_forecast.backbone import shared_backbone
    from trace_forecast.engine.precision import head_start_features
    from trace_forecast.heads import resolve_future_patches
    from trace_forecast.network import build_network
    from trace_forecast.spec import NetworkSpec

    spec = NetworkSpec(horizon=horizon, context_length=lookback, adapter="none",
                       future_patches=resolve_future_patches("auto", horizon, lookback))
    network = build_network(shared_backbone(None), spec, seed=0).eval()
    out = []
    with torch.no_grad(), head_start_features(network, "cpu") as reader:
        for i in range(0, len(histories), batch):
            x = torch.from_numpy(np.ascontiguousarray(histories[i : i + batch], np.float32))[:, None, :]
            f, m, s = reader.forecast_features(x, torch.ones(len(x), lookback))
            out.append((f[:, 0].double().numpy(), m[:, 0, 0].double().numpy(), s[:, 0, 0].double().numpy()))
    feats, mean, std = (np.concatenate(parts) for parts in zip(*out, strict=True))
    return feats, mean, std, network.forecast_head.prior_weight().double()


def statistics(x: np.ndarray, y: np.ndarray, weight: np.ndarray) -> RidgeStatistics:
    xb = torch.from_numpy(np.hstack([x, np.ones((len(x), 1))]))
    yt, w = torch.from_numpy(y), torch.from_numpy(weight)
    return RidgeStatistics((xb * w[:, None]).T @ xb, (xb * w[:, None]).T @ yt, ((yt * yt) * w[:, None]).sum(0),
                           torch.tensor(float(len(x)), dtype=torch.float64))


def evaluate(dataset: str, horizon: int) -> list[dict]:
    from benchmarks.data_size import long_horizon_split

    lookback, fractions, _, stride = DATASETS[dataset]
    split = long_horizon_split(dataset)
    train = [split.train[c].to_numpy(np.float64) for c in split.train.columns]
    windows = [rolling_windows(s, lookback, horizon) for s in train]
    per = len(windows[0][0])
    feats, mean, std, prior = features(horizon, np.concatenate([h for h, _ in windows]), lookback)
    future = np.concatenate([f for _, f in windows])
    target = np.clip((future - mean[:, None]) / std[:, None], -TARGET_CLIP, TARGET_CLIP)
    test_h, test_f = [], []
    for c in split.test.columns:
        h, f = rolling_windows(split.test[c].to_numpy(np.float32), lookback, horizon)
        test_h.append(h[::stride]), test_f.append(f[::stride])
    test_h, test_f = np.concatenate(test_h), np.concatenate(test_f)
    t_feats, t_mean, t_std, _ = features(horizon, test_h, lookback)

    def test_mse(weight: torch.Tensor, bias: torch.Tensor) -> float:
        pred = t_feats @ weight.double().numpy().T + bias.double().numpy()
        return float(np.mean((pred * t_std[:, None] + t_mean[:, None] - test_f) ** 2))

    rows = []
    for fraction in fractions:
        keep = max(1, math.ceil(fraction * per))
        rows_in_slice = keep + lookback + horizon - 1
        cut = validation_cut(rows_in_slice)
        position = np.arange(keep)  # window j of the slice has its origin at row lookback + j of the slice
        fit_part = position + lookback + horizon <= cut
        val_part = position + lookback >= cut
        if not val_part.any():
            val_part[-1] = True
        idx = lambda part: np.concatenate([c * per + per - keep + position[part] for c in range(len(train))])  # noqa: E731
        fit_i, val_i = idx(fit_part), idx(val_part)
        units = np.concatenate([np.full(per, s[len(s) - rows_in_slice:].std()) for s in train])
        weights = {w: window_weights(torch.from_numpy(std), torch.from_numpy(units), w).numpy() for w in WEIGHTINGS}
        weights[None] = np.ones(len(std))

        def stats(i, weighting):
            return statistics(feats[i], target[i], weights[weighting][i])

        results = {"zero-shot map": test_mse(prior, torch.zeros(horizon)),
                   "ridge, penalty 1": test_mse(*ridge_solution(stats(fit_i, None), None, DEFAULT_ALPHA))}
        train_u, val_u = stats(fit_i, None), stats(val_i, None)
        targets = {"zero": None, "prior": prior}
        best = min(targets, key=lambda k: squared_error(val_u, *ridge_solution(train_u, targets[k], DEFAULT_ALPHA)))
        results["target chosen on validation (before)"] = test_mse(
            *ridge_solution(train_u + val_u, targets[best], DEFAULT_ALPHA))
        for name, fit_ws, choose_w in (("blend chosen on validation (default)", WEIGHTINGS, "series units"),
                                       ("blend chosen on validation, windows alike", ("fit",), "series units"),
                                       ("blend chosen on validation, all in series units", ("series units",),
                                        "series units"),
                                       ("blend chosen on validation, unweighted", (None,), None)):
            if len(val_i) < MIN_VALIDATION_WINDOWS:  # too little evidence: the zero-shot map (as ridge_solve)
                results[name] = results["zero-shot map"]
                results[name + ": choice"] = {"alpha": None, "blend": 0.0, "weighting": None}
                continue
            candidates = {w: stats(fit_i, w) for w in fit_ws}
            choice = choose_head_start({str(w): s for w, s in candidates.items()}, stats(val_i, choose_w), prior)
            weighting = None if choice.weighting == "None" else choice.weighting
            joined = candidates[weighting] + stats(val_i, weighting)
            results[name] = test_mse(*blend(ridge_solution(joined, None, choice.alpha), prior, choice.blend))
            results[name + ": choice"] = {"alpha": choice.alpha, "blend": choice.blend, "weighting": weighting}
        sliced = [s[len(s) - rows_in_slice:] for s in train]
        results["RevIN ridge"] = float(np.mean(
            (revin_ridge(sliced, horizon, lookback, list(test_h.astype(np.float64))) - test_f) ** 2))
        row = {"dataset": dataset, "horizon": horizon, "fraction": fraction, "train_windows": keep * len(train),
               "test_windows": len(test_h), **results}
        rows.append(row)
    return rows


KEY = ("dataset", "horizon", "fraction")


def options(parser) -> None:
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))


def run(args, record: Record) -> None:
    for name in args.datasets:
        for horizon in DATASETS[name][2]:
            for row in evaluate(name, horizon):
                record.add(row)


if __name__ == "__main__":
    main(__name__)
