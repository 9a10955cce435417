"""Global forecasting at scale: prediction time against the number of series.

A panel of ``n`` synthetic series (200 hourly points each: daily seasonality, trend and
noise, each with its own level and amplitude) is fitted once with the default
``TraceForecaster`` (context 64, horizon 24), then ``predict()`` forecasts every series in
one call. ``n`` goes from 100 to 10,000; prediction should grow linearly in ``n`` (it is
one batched pass per 256 series), and fitting should not grow at all beyond the data
conversion (the recipe trains on a fixed number of windows).

``python -m benchmarks.many_series`` (about 3 minutes on 2 CPU cores) writes
``benchmarks/results/many_series.json`` and ``docs/figures/many_series.png``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.harness import DOCS, Record, main, timed

SIZES = (100, 300, 1000, 3000, 10000)
FIGURE = DOCS / "figures" / "many_series.png"
LENGTH, CONTEXT, HORIZON = 200, 64, 24


def panel(n: int, seed: int = 0) -> pd.DataFrame:
    """``n`` synthetic hourly series as an sktime ``pd-multiindex`` frame."""
    rng = np.random.default_rng(seed)
    t = np.arange(LENGTH)
    level = rng.uniform(5, 50, (n, 1))
    amplitude = rng.uniform(0.5, 5, (n, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    trend = rng.normal(0, 0.02, (n, 1))
    values = level + amplitude * np.sin(2 * np.pi * t / 24 + phase) + trend * t + rng.normal(0, 0.3, (n, LENGTH))
    index = pd.MultiIndex.from_product([np.arange(n), pd.period_range("2024-01-01", periods=LENGTH, freq="h")],
                                       names=["series", "time"])
    return pd.DataFrame({"y": values.reshape(-1)}, index=index)


KEY = ("series",)


def options(parser) -> None:
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))


def run(args, record: Record) -> None:
    from trace_forecast import TraceForecaster

    record.protocol.update(length=LENGTH, context=CONTEXT, horizon=HORIZON)
    for n in args.sizes:
        y = panel(n)
        forecaster = TraceForecaster(context_length=CONTEXT, random_state=0)
        with timed() as fit_s:
            forecaster.fit(y, fh=list(range(1, HORIZON + 1)))
        with timed() as predict_s:
            pred = forecaster.predict()
        fit_s, predict_s = fit_s(), predict_s()
        assert len(pred) == n * HORIZON and np.isfinite(pred.to_numpy()).all()
        record.add({"series": n, "fit_seconds": round(fit_s, 2), "predict_seconds": round(predict_s, 3),
                    "predict_ms_per_series": round(1000 * predict_s / n, 3)})
    rows = sorted(record.rows, key=lambda r: r["series"])
    n = np.array([r["series"] for r in rows], float)
    t = np.array([r["predict_seconds"] for r in rows])
    slope, intercept = np.polyfit(n, t, 1)
    fitted = slope * n + intercept
    r2 = 1 - ((t - fitted) ** 2).sum() / ((t - t.mean()) ** 2).sum()
    exponent = float(np.polyfit(np.log(n), np.log(t), 1)[0])
    record.summary.update(linear_fit={"seconds_per_series": slope, "intercept_s": intercept, "r2": r2},
                          log_log_exponent=exponent)
    figure(rows, record.summary["linear_fit"])


def figure(rows: list[dict], lin: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["series"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(n, [r["predict_seconds"] for r in rows], "o-", label="predict() for all series")
    ax.loglog(n, [r["fit_seconds"] for r in rows], "s--", label="fit() (fixed window budget)")
    ax.loglog(n, [lin["seconds_per_series"] * x + lin["intercept_s"] for x in n], ":", color="0.4",
              label=f"linear fit, R² {lin['r2']:.3f}")
    ax.set_xlabel("series in the panel")
    ax.set_ylabel("seconds (2 CPU cores)")
    ax.set_title(f"Global TraceForecaster: {HORIZON}-step forecasts, context {CONTEXT}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(FIGURE, dpi=120)


if __name__ == "__main__":
    main(__name__)
