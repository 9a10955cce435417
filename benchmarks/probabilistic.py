"""Prediction intervals out of sample: empirical coverage, interval score and CRPS.

ETTh1 (all 7 channels, train-standardised): one fit on the training and validation months,
then the cutoff walks through the test months (an origin every ``--stride`` hours) with
``update(..., update_params=False)``, as sktime's ``evaluate`` does without refitting; at
each origin the 24-step intervals at 50 / 80 / 95 % are scored against what followed.

Methods, same origins and data:

- ``TRACE``: the default ``TraceForecaster``, whose calibration pool takes the windows
  each update completes (online split-conformal, ``docs/design.md``);
- ``TRACE, fit-time residuals only``: the same fitted model with its validation residuals
  frozen (the calibration before this change);
- ``seasonal naive (24), empirical quantiles``: seasonal naive forecasts with quantiles of
  its own 24-step errors over the training and validation months.

Scores: coverage (share of actual values inside the interval), the interval score
(Gneiting & Raftery: width + 2/alpha x the miss distance, averaged over steps) and CRPS
approximated from the 19 quantiles 5 %, 10 %, ..., 95 % (mean pinball loss x 2).

M4 Hourly (414 series, H = 48, the competition's interval protocol): one global fit, then
95 % intervals scored with MSIS (the interval score scaled by each series' in-sample
seasonal naive error, seasonality 24, averaged over series) and coverage at 80 / 95 %,
against seasonal naive with empirical quantiles of each series' own 48-step seasonal-naive
errors.

``python -m benchmarks.probabilistic [--stride 24] [--suite etth1 m4]``
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from benchmarks.common import RESULTS, environment
from benchmarks.long_horizon import fit_rows, load_split

HORIZON, PERIOD = 24, 24
COVERAGES = (0.5, 0.8, 0.95)
QUANTILES = tuple(np.round(np.arange(0.05, 0.96, 0.05), 2))


def interval_score(y: np.ndarray, lo: np.ndarray, hi: np.ndarray, coverage: float) -> float:
    alpha = 1 - coverage
    return float(np.mean((hi - lo) + 2 / alpha * (lo - y) * (y < lo) + 2 / alpha * (y - hi) * (y > hi)))


def crps_from_quantiles(y: np.ndarray, q: dict[float, np.ndarray]) -> float:
    """2 x the mean pinball loss over the quantile levels (a Riemann approximation of CRPS)."""
    losses = [np.mean(np.maximum(a * (y - v), (a - 1) * (y - v))) for a, v in q.items()]
    return float(2 * np.mean(losses))


def scores(y: np.ndarray, q: dict[float, np.ndarray]) -> dict[str, float]:
    """Coverage and interval score at each level, and CRPS, from quantile forecasts."""
    out = {}
    for c in COVERAGES:
        lo, hi = q[round((1 - c) / 2, 3)], q[round((1 + c) / 2, 3)]
        out[f"coverage_{int(c * 100)}"] = float(np.mean((y >= lo) & (y <= hi)))
        out[f"interval_score_{int(c * 100)}"] = interval_score(y, lo, hi, c)
    out["crps"] = crps_from_quantiles(y, {a: q[a] for a in QUANTILES})
    return out


def levels() -> list[float]:
    cover = [round((1 - c) / 2, 3) for c in COVERAGES] + [round((1 + c) / 2, 3) for c in COVERAGES]
    return sorted(set(cover) | set(QUANTILES))


def trace_quantiles(forecaster, frozen: bool, history: pd.DataFrame, test: pd.DataFrame, origins: list[int]):
    """Quantile forecasts ``{level: [origins, channels, H]}`` at each origin, updating as it goes."""
    if frozen:
        forecaster._calibrate_online = lambda series: None  # the pool keeps the fit-time residuals
    out = {a: [] for a in levels()}
    seen = 0
    for origin in origins:
        if origin > seen:
            forecaster.update(test.iloc[seen:origin], update_params=False)
            seen = origin
        q = forecaster.predict_quantiles(fh=np.arange(1, HORIZON + 1), alpha=levels())
        for a in levels():
            out[a].append(q.xs(a, axis=1, level=1).to_numpy().T)
    return {a: np.stack(v) for a, v in out.items()}


def naive_quantiles(train: pd.DataFrame, test: pd.DataFrame, origins: list[int]):
    """Seasonal naive with empirical quantiles of its own errors on the fitting rows."""
    values = train.to_numpy()
    errors = np.stack([values[t : t + HORIZON] - values[t - PERIOD : t - PERIOD + HORIZON]
                       for t in range(PERIOD, len(values) - HORIZON + 1)])  # [n, H, C]
    full = pd.concat([train, test]).to_numpy()
    base = len(train)
    point = np.stack([full[base + o - PERIOD : base + o - PERIOD + HORIZON].T for o in origins])  # [O, C, H]
    return {a: point + np.quantile(errors, a, axis=0).T[None] for a in levels()}


def msis(history: np.ndarray, y: np.ndarray, lo: np.ndarray, hi: np.ndarray, m: int = 24, a: float = 0.05) -> float:
    """M4's mean scaled interval score of one series."""
    return interval_score(y, lo, hi, 1 - a) / float(np.mean(np.abs(history[m:] - history[:-m])))


def m4(seed: int) -> dict:
    """TRACE's and seasonal naive's intervals on M4 Hourly (module docstring)."""
    from benchmarks.m4 import HORIZON as H48
    from benchmarks.m4 import load_m4_hourly, seasonal_naive
    from trace_forecast import TraceForecaster

    histories, futures = load_m4_hourly()
    frame = pd.concat({i: pd.DataFrame({"y": h}) for i, h in enumerate(histories)}, names=["series", "t"])
    forecaster = TraceForecaster(random_state=seed).fit(frame, fh=np.arange(1, H48 + 1))
    alphas = [0.025, 0.1, 0.9, 0.975]
    q = forecaster.predict_quantiles(alpha=alphas)
    bands = {a: q[("y", a)].to_numpy().reshape(len(histories), H48) for a in alphas}
    naive = {a: [] for a in alphas}
    for h in histories:
        errors = np.stack([h[t : t + H48] - seasonal_naive(h[:t], H48) for t in range(len(h) - 4 * H48, len(h) - H48 + 1)])
        for a in alphas:
            naive[a].append(seasonal_naive(h, H48) + np.quantile(errors, a, axis=0))
    rows = []
    for name, b in (("TRACE", bands), ("seasonal naive (24), empirical quantiles", {a: np.stack(v) for a, v in naive.items()})):
        rows.append({
            "method": name,
            "msis_95": float(np.mean([msis(h, y, lo, hi) for h, y, lo, hi
                                      in zip(histories, futures, b[0.025], b[0.975], strict=True)])),
            "scaled_width_95": float(np.mean([np.mean(hi - lo) / np.mean(np.abs(h[24:] - h[:-24])) for h, lo, hi
                                              in zip(histories, b[0.025], b[0.975], strict=True)])),
            "coverage_80": float(np.mean((futures >= b[0.1]) & (futures <= b[0.9]))),
            "coverage_95": float(np.mean((futures >= b[0.025]) & (futures <= b[0.975]))),
        })
        print(rows[-1], flush=True)
    return {"dataset": "M4 Hourly", "horizon": H48, "series": len(histories), "rows": rows}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stride", type=int, default=24, help="hours between forecast origins")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--suite", nargs="+", choices=("etth1", "m4"), default=["etth1", "m4"])
    args = parser.parse_args(argv)
    out = {}
    if "m4" in args.suite:
        out["m4"] = {"environment": environment(), **m4(args.seed)}
        (RESULTS / "probabilistic_m4.json").write_text(json.dumps(out["m4"], indent=1))
    if "etth1" in args.suite:
        out["etth1"] = etth1(args)
    return out


def etth1(args: argparse.Namespace) -> dict:
    from trace_forecast import TraceForecaster

    start = time.perf_counter()
    split = load_split("ETTh1")
    rows, val_share = fit_rows(split)
    rows = rows.reset_index(drop=True)
    test = split.test.iloc[512:].reset_index(drop=True)
    test.index = test.index + len(rows)
    origins = list(range(0, len(test) - HORIZON + 1, args.stride))
    actual = np.stack([test.iloc[o : o + HORIZON].to_numpy().T for o in origins])  # [O, C, H]
    results = {"environment": environment(), "dataset": "ETTh1", "horizon": HORIZON, "origins": len(origins),
               "stride": args.stride, "rows": []}
    for name, frozen in (("TRACE", False), ("TRACE, fit-time residuals only", True)):
        forecaster = TraceForecaster(validation_fraction=val_share, random_state=args.seed)
        forecaster.fit(rows, fh=np.arange(1, HORIZON + 1))
        q = trace_quantiles(forecaster, frozen, rows, test, origins)
        results["rows"].append({"method": name, **scores(actual, q)})
        print(results["rows"][-1], flush=True)
    q = naive_quantiles(rows, test, origins)
    results["rows"].append({"method": "seasonal naive (24), empirical quantiles", **scores(actual, q)})
    print(results["rows"][-1], flush=True)
    results["seconds"] = round(time.perf_counter() - start, 1)
    (RESULTS / "probabilistic_etth1.json").write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
