"""Backtest TraceForecaster with sktime's ``evaluate`` against sktime baselines.

Airline passengers (144 monthly points, shipped with sktime), 3 expanding-window folds
with a 12-month horizon; TRACE's defaults, seasonal naive and Theta are scored by MAPE
on the same folds.

Run: ``python examples/forecast_evaluate.py`` (about a minute on 2 CPU cores).
"""

import warnings

import pandas as pd
from sktime.datasets import load_airline
from sktime.forecasting.model_evaluation import evaluate
from sktime.forecasting.naive import NaiveForecaster
from sktime.forecasting.theta import ThetaForecaster
from sktime.performance_metrics.forecasting import MeanAbsolutePercentageError
from sktime.split import ExpandingWindowSplitter

from trace_forecast import TraceForecaster

# sktime's baselines announce a coming change of their ``remember_data`` default on every fit.
warnings.filterwarnings("ignore", message=".*remember_data.*", category=FutureWarning)


def main() -> pd.DataFrame:
    y = load_airline().astype(float)
    cv = ExpandingWindowSplitter(fh=list(range(1, 13)), initial_window=108, step_length=12)
    candidates = {
        "TraceForecaster": TraceForecaster(random_state=0),
        "seasonal naive": NaiveForecaster(strategy="last", sp=12),
        "Theta": ThetaForecaster(sp=12),
    }
    rows = []
    for name, forecaster in candidates.items():
        result = evaluate(forecaster, cv=cv, y=y, scoring=MeanAbsolutePercentageError())
        rows.append({"forecaster": name, "MAPE": result["test_MeanAbsolutePercentageError"].mean(),
                     "fit seconds per fold": result["fit_time"].mean()})
    table = pd.DataFrame(rows).set_index("forecaster")
    print(f"airline, {cv.get_n_splits(y)} expanding folds, horizon 1-12")
    print(table.round(3).to_string())
    return table


if __name__ == "__main__":
    main()
