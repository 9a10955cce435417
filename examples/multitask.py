"""One multi-task fit, two uses: forecast and score anomalies with the same model, in sktime
and in Darts.

TRACE trains one set of gated LoRA adapters on forecasting and masked reconstruction at
once (``multitask=True``). Here the forecaster is fitted once on ETTh1's oil temperature
(the training months), forecasts the next day, and then -- with no second fit -- becomes
an anomaly detector (``to_detector``) that finds a spike, a level shift and a noise burst
injected into the months after. The detector turns back into a forecaster
(``to_forecaster``) that forecasts exactly as the original. The Darts model does the
same with ``to_anomaly_scorer``.

Run: ``python examples/multitask.py`` (about a minute on 2 CPU cores).
"""

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from trace_forecast import TraceForecaster
from trace_forecast.datasets import inject_anomalies, load_etth1

TRAIN = 12 * 30 * 24
HORIZON = 24


def sktime_part(y: pd.DataFrame) -> None:
    x, labels = inject_anomalies(y["OT"], TRAIN)
    forecaster = TraceForecaster(multitask=True, random_state=0)
    forecaster.fit(y.iloc[:TRAIN], fh=np.arange(1, HORIZON + 1))
    forecast = forecaster.predict()
    mse = float(np.mean((forecast["OT"].to_numpy() - y["OT"].iloc[TRAIN:TRAIN + HORIZON].to_numpy()) ** 2))
    print(f"sktime: TraceForecaster(multitask=True) fitted once; next-day forecast MSE {mse:.3f}")
    detector = forecaster.to_detector()       # no second fit: calibration on the training months only
    test = x.iloc[TRAIN:].to_frame()
    scores = detector.transform_scores(test)["scores"].to_numpy()
    print(f"sktime: forecaster.to_detector() -> {type(detector).__name__}; "
          f"AUC-ROC of its scores after the training months: {roc_auc_score(labels[TRAIN:], scores):.3f}")
    back = detector.to_forecaster()
    same = np.allclose(back.predict().to_numpy(), forecast.to_numpy())
    print(f"sktime: detector.to_forecaster() forecasts as the original: {same}")


def darts_part(y: pd.DataFrame) -> None:
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel

    x, labels = inject_anomalies(y["OT"], TRAIN)
    train = TimeSeries.from_values(y["OT"].to_numpy(np.float32)[:TRAIN])
    model = TraceModel(output_chunk_length=HORIZON, multitask=True, random_state=0)
    model.fit(train, verbose=False)
    forecast = model.predict(HORIZON, verbose=False)
    scorer = model.to_anomaly_scorer()        # calibrated on the training series, nothing trained
    scores = scorer.score(TimeSeries.from_values(x.to_numpy(np.float32)[TRAIN:])).values()[:, 0]
    print(f"darts: TraceModel(multitask=True) forecast of {forecast.n_timesteps} steps; "
          f"to_anomaly_scorer() AUC-ROC {roc_auc_score(labels[TRAIN:], scores):.3f}")


def main() -> None:
    y = load_etth1()[["OT"]].reset_index(drop=True)
    sktime_part(y)
    darts_part(y)


if __name__ == "__main__":
    main()
