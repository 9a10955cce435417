"""Prediction intervals and their empirical coverage.

TraceForecaster's intervals are split-conformal, per horizon step: calibrated on the
held-out tail of the training data. Here they are checked where it matters, on data
after the fit: sktime's ``evaluate`` moves the cutoff through ETTh1's validation months
without refitting (``strategy="no-update_params"``) and scores how often the actual
values fall inside the 80 % and 95 % intervals.

Run: ``python examples/prediction_intervals.py`` (writes ``intervals.png``; about 40 s).
"""

import matplotlib

matplotlib.use("Agg")

import pandas as pd  # noqa: E402
from sktime.forecasting.model_evaluation import evaluate  # noqa: E402
from sktime.performance_metrics.forecasting.probabilistic import EmpiricalCoverage  # noqa: E402
from sktime.split import ExpandingWindowSplitter  # noqa: E402

from trace_forecast import TraceForecaster  # noqa: E402
from trace_forecast.datasets import load_etth1  # noqa: E402
from trace_forecast.plotting import plot_forecast  # noqa: E402

HORIZON = 24
TRAIN = 12 * 30 * 24  # ETTh1's standard training months


def main() -> pd.DataFrame:
    y = load_etth1()["OT"].iloc[: TRAIN + 4 * 30 * 24]  # + the validation months
    fh = list(range(1, HORIZON + 1))
    forecaster = TraceForecaster(random_state=0)
    cv = ExpandingWindowSplitter(fh=fh, initial_window=TRAIN, step_length=7 * 24)  # one origin per week
    scoring = [EmpiricalCoverage(coverage=0.8), EmpiricalCoverage(coverage=0.95)]
    result = evaluate(forecaster, cv=cv, y=y, strategy="no-update_params", scoring=scoring)
    coverage = result.filter(like="test_EmpiricalCoverage").mean()
    print(f"ETTh1 OT, {len(result)} forecast origins after the fit, horizon 1-{HORIZON}")
    for (name, value), nominal in zip(coverage.items(), (0.8, 0.95)):
        print(f"  nominal {nominal:.0%}: empirical coverage {value:.1%}")

    fitted = TraceForecaster(random_state=0).fit(y.iloc[:TRAIN], fh=fh)
    fig = plot_forecast(y.iloc[:TRAIN], fitted.predict(), fitted.predict_interval(coverage=[0.8, 0.95]),
                        y_test=y.iloc[TRAIN:TRAIN + HORIZON], history=7 * 24, title="ETTh1 OT: 24-hour forecast")
    fig.savefig("intervals.png", dpi=120)
    print("wrote intervals.png")
    return coverage.to_frame("empirical coverage")


if __name__ == "__main__":
    main()
