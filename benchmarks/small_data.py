"""Short series: the default ``TraceForecaster()`` against Theta, AutoETS and seasonal naive.

``python -m benchmarks.small_data --profile quick`` writes ``benchmarks/results/small_data_quick.json``
(seed 0); ``--profile standard`` runs TRACE with that profile's seeds (the classical methods are
deterministic and run once).

Data: series that sktime ships (offline). Protocol: sktime ``evaluate`` with an
``ExpandingWindowSplitter`` of 4 folds, the last fold ending at the series' end, a
horizon of one season (12 months; lynx, yearly: 10 years; shampoo sales, 36 months: 6;
US real GDP, quarterly: 8),
folds ``horizon`` apart, MAPE per fold, mean over folds.
Every estimator at its defaults except the seasonal period; TRACE with ``random_state=0``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from benchmarks.harness import main, suite_runner

FOLDS = 4


def series() -> dict[str, tuple]:
    from sktime.datasets import load_airline, load_lynx, load_macroeconomic, load_shampoo_sales

    gdp = load_macroeconomic()["realgdp"]
    return {"airline": (load_airline(), 12, 12), "shampoo_sales": (load_shampoo_sales(), 12, 6),
            "lynx": (load_lynx(), 10, 10), "US real GDP (quarterly)": (gdp, 4, 8)}


TRACE = "TraceForecaster() default"


def forecasters(sp: int, seed: int = 0) -> dict:
    from sktime.forecasting.ets import AutoETS
    from sktime.forecasting.naive import NaiveForecaster
    from sktime.forecasting.theta import ThetaForecaster

    from trace_forecast import TraceForecaster

    return {TRACE: TraceForecaster(random_state=seed),
            "ThetaForecaster": ThetaForecaster(sp=sp), "AutoETS": AutoETS(auto=True, sp=sp, n_jobs=1),
            "seasonal naive": NaiveForecaster(strategy="last", sp=sp)}


def suite(profile, record) -> None:
    """One row per series, method and seed (TRACE only gets seeds)."""
    from sktime.forecasting.model_evaluation import evaluate
    from sktime.performance_metrics.forecasting import MeanAbsolutePercentageError
    from sktime.split import ExpandingWindowSplitter

    seeds = profile.seeds
    for name, (y, sp, horizon) in series().items():
        y = y.astype(float)
        fh = np.arange(1, horizon + 1)
        cv = ExpandingWindowSplitter(fh=fh, initial_window=len(y) - FOLDS * horizon, step_length=horizon)
        for seed in seeds:
            for method, forecaster in forecasters(sp, seed).items():
                if seed != seeds[0] and method != TRACE:
                    continue
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    result = evaluate(forecaster, cv=cv, y=y, scoring=MeanAbsolutePercentageError())
                record.add({"series": name, "length": len(y), "sp": sp, "horizon": horizon, "method": method,
                            "seed": seed if method == TRACE else None, "mape": float(result.iloc[:, 0].mean()),
                            "folds": len(result), "seconds_per_fold": (time.perf_counter() - start) / len(result),
                            "profile": profile.name})


KEY, options, result_name, run = suite_runner(__name__, suite, key=("series", "method", "seed"), methods=False)

if __name__ == "__main__":
    main(__name__)
