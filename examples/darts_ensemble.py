"""TraceModel in Darts ensembles, back-tested with ``historical_forecasts``.

TraceModel and Darts' NLinearModel forecast ETTh1's oil temperature 24 hours ahead; a
``NaiveEnsembleModel`` averages the two fitted models (``train_forecasting_models=False``:
nothing is trained twice) and a ``RegressionEnsembleModel`` learns their weights from
fresh members' back-tests. Every model is back-tested with Darts' ``backtest`` on the same 60 forecast
origins after the training data (fitted once, ``retrain=False``; the seasonal-naive
reference "refits" at each origin, which costs nothing) and scored by MAE.

Run: ``python examples/darts_ensemble.py`` (about a minute on 2 CPU cores).
"""

import logging
import warnings

from darts import TimeSeries
from darts.metrics import mae
from darts.models import NaiveEnsembleModel, NaiveSeasonal, NLinearModel, RegressionEnsembleModel

from trace_forecast.darts import TraceModel
from trace_forecast.datasets import load_etth1

CONTEXT, HORIZON = 168, 24  # one week of hourly context
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}
# NLinearModel's trainer announces the hardware at every fit; TraceModel is quiet already.
logging.getLogger("pytorch_lightning").setLevel(logging.ERROR)


def trace() -> TraceModel:
    return TraceModel(input_chunk_length=CONTEXT, output_chunk_length=HORIZON, random_state=0, pl_trainer_kwargs=QUIET)


def nlinear() -> NLinearModel:
    return NLinearModel(input_chunk_length=CONTEXT, output_chunk_length=HORIZON, n_epochs=3, random_state=0,
                        pl_trainer_kwargs=QUIET)


def ensembles(trace_model: TraceModel, nlinear_model: NLinearModel) -> dict:
    """The mean of the two fitted models, and a regression over two fresh ones."""
    return {
        # show_warnings=False: Darts notes that neither member uses covariates (there are none).
        "naive ensemble (mean)": NaiveEnsembleModel([trace_model, nlinear_model], train_forecasting_models=False,
                                                    show_warnings=False),
        # The regression learns the weights from the members' back-tests over the last 20 days
        # of the training data (one long auto-regressive forecast would teach it the wrong errors).
        "regression ensemble": RegressionEnsembleModel(
            [trace(), nlinear()], regression_train_n_points=HORIZON * 20, train_using_historical_forecasts=True,
            show_warnings=False,
        ),
    }


def main() -> dict:
    frame = load_etth1()[["OT"]].iloc[: 14 * 30 * 24]
    series = TimeSeries.from_dataframe(frame).astype("float32")
    train, test = series[: 12 * 30 * 24], series[12 * 30 * 24:]
    singles = {"seasonal naive (24 h)": NaiveSeasonal(K=24), "TraceModel": trace(), "NLinearModel": nlinear()}

    def backtest(model) -> float:
        model.fit(train)
        return model.backtest(series, start=len(train), forecast_horizon=HORIZON, stride=HORIZON,
                              retrain=isinstance(model, NaiveSeasonal), last_points_only=False, metric=mae,
                              verbose=False)

    with warnings.catch_warnings():
        # NLinearModel's trainer: dataloader-worker hints and a deprecation inside Lightning itself.
        warnings.simplefilter("ignore", UserWarning)
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        scores = {name: backtest(model) for name, model in singles.items()}
        scores |= {name: backtest(model)
                   for name, model in ensembles(singles["TraceModel"], singles["NLinearModel"]).items()}
    print(f"ETTh1 OT, back-test of {len(test) // HORIZON} 24-hour forecasts after the training data (MAE):")
    for name, value in scores.items():
        print(f"  {name:<24} {value:.3f}")
    return scores


if __name__ == "__main__":
    main()
