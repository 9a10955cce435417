"""Prediction intervals and their empirical coverage.

TraceForecaster's intervals are split-conformal, per horizon step: calibrated on the
held-out tail of the training data, then on each window that ``update`` completes. Here
they are checked where it matters, on data after the fit: the forecaster is fitted once
on ETTh1's training months, then the cutoff moves through the validation months a day at
a time without refitting (``update(..., update_params=False)``, what sktime's ``evaluate``
does with ``strategy="no-update_params"``), and sktime's ``EmpiricalCoverage`` scores how
often the actual values fall inside the 80 % and 95 % intervals.

One origin a day forecasts every validation hour once. (Weekly origins score one day in
seven: 18 origins, whose coverage wanders by several points with the days drawn.)

Run: ``python examples/prediction_intervals.py`` (writes ``intervals.png``; about a minute).
"""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sktime.performance_metrics.forecasting.probabilistic import EmpiricalCoverage  # noqa: E402

from trace_forecast import TraceForecaster  # noqa: E402
from trace_forecast.datasets import load_etth1  # noqa: E402
from trace_forecast.plotting import plot_forecast  # noqa: E402

HORIZON = 24
TRAIN = 12 * 30 * 24  # ETTh1's standard training months


def main() -> pd.DataFrame:
    y = load_etth1()["OT"].iloc[: TRAIN + 4 * 30 * 24]  # + the validation months
    fh = list(range(1, HORIZON + 1))
    forecaster = TraceForecaster(random_state=0).fit(y.iloc[:TRAIN], fh=fh)
    fig = plot_forecast(y.iloc[:TRAIN], forecaster.predict(), forecaster.predict_interval(coverage=[0.8, 0.95]),
                        y_test=y.iloc[TRAIN:TRAIN + HORIZON], history=7 * 24, title="ETTh1 OT: 24-hour forecast")
    fig.savefig("intervals.png", dpi=120)

    scores = {0.8: EmpiricalCoverage(coverage=0.8), 0.95: EmpiricalCoverage(coverage=0.95)}
    coverage = {nominal: [] for nominal in scores}
    cutoffs = range(TRAIN, len(y) - HORIZON + 1, HORIZON)  # one forecast origin per day
    seen = TRAIN
    for cutoff in cutoffs:
        if cutoff > seen:  # the new observations move the cutoff; the model stays as fitted
            forecaster.update(y.iloc[seen:cutoff], update_params=False)
            seen = cutoff
        actual = y.iloc[cutoff : cutoff + HORIZON]
        for nominal, metric in scores.items():
            coverage[nominal].append(metric(actual, forecaster.predict_interval(coverage=nominal)))
    print(f"ETTh1 OT, {len(cutoffs)} forecast origins after the fit, horizon 1-{HORIZON}")
    for nominal, values in coverage.items():
        print(f"  nominal {nominal:.0%}: empirical coverage {np.mean(values):.1%}")
    print("wrote intervals.png")
    return pd.DataFrame({"empirical coverage": {k: np.mean(v) for k, v in coverage.items()}})


if __name__ == "__main__":
    main()
