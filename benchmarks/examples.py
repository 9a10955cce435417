"""Data for the forecast figure: TRACE, seasonal naive and the truth on ETTh1's last test
window (channel ``OT``, H = 96), with the profile's training budget."""

from __future__ import annotations

import numpy as np

from benchmarks.harness import METHODS, Profile, main, suite_runner
from benchmarks.long_horizon import LOOKBACK, fit_rows, load_split
from trace_forecast.metrics import seasonal_naive

HORIZON = 96


def suite(profile: Profile, record) -> None:
    from trace_forecast import TraceForecaster

    split = load_split("ETTh1")
    rows, val_share = fit_rows(split)
    forecaster = TraceForecaster(**METHODS["TRACE"], context_length=LOOKBACK, max_epochs=profile.epochs,
                                 max_windows=profile.max_windows, validation_fraction=val_share,
                                 random_state=profile.seeds[0])
    forecaster.fit(rows, fh=np.arange(1, HORIZON + 1))
    ot = split.test["OT"].to_numpy(np.float32)
    history, truth = ot[-(LOOKBACK + HORIZON) : -HORIZON], ot[-HORIZON:]
    pred = forecaster.predict_histories([history])[0]
    naive = seasonal_naive(history[None], HORIZON, 24)[0]
    example = {"dataset": "ETTh1", "channel": "OT", "horizon": HORIZON, "history": history[-192:].tolist(),
               "truth": truth.tolist(), "TRACE": pred.tolist(), "seasonal naive (24)": naive.tolist()}
    record.summary["example"] = example
    record.add({"dataset": "ETTh1", "horizon": HORIZON, "method": "TRACE", "window": "last test window, OT",
                "mse": float(np.mean((pred - truth) ** 2)), "profile": profile.name})


KEY, options, result_name, run = suite_runner(__name__, suite, methods=False)

if __name__ == "__main__":
    main(__name__)
