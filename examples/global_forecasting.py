"""One model for many series: fit TraceForecaster on a panel, forecast every series in it,
then forecast series the model has never seen.

The panel is five of ETTh1's seven hourly channels (shipped with the package), one
``pd.MultiIndex`` frame as sktime expects; the two held-out channels are the unseen series.

Run: ``python examples/global_forecasting.py`` (about 30 s on 2 CPU cores).
"""

import numpy as np
import pandas as pd

from trace_forecast import TraceForecaster
from trace_forecast.datasets import load_etth1

HORIZON = 24
CONTEXT = 336


def as_panel(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns of ``frame`` as the instances of an sktime panel (``pd-multiindex``)."""
    frame = frame.set_axis(frame.index.to_period("h"))  # periods carry their frequency
    long = frame.melt(ignore_index=False, var_name="series", value_name="value")
    long = long.rename_axis("time").reset_index()
    return long.set_index(["series", "time"]).sort_index()


def main() -> dict:
    data = load_etth1().iloc[: 12 * 30 * 24]  # the standard training months
    seen, unseen = ["HUFL", "HULL", "MUFL", "MULL", "LUFL"], ["LULL", "OT"]
    panel = as_panel(data[seen].iloc[:-HORIZON])

    forecaster = TraceForecaster(context_length=CONTEXT, random_state=0)
    forecaster.fit(panel, fh=list(range(1, HORIZON + 1)))  # one model, all series
    pred = forecaster.predict()
    print(f"panel of {len(seen)} series -> forecasts with index levels {list(pred.index.names)}:")
    actual = as_panel(data[seen].iloc[-HORIZON:])
    mae = (pred["value"] - actual["value"]).abs().groupby(level="series").mean()
    print(mae.rename("MAE, last 24 hours").round(3).to_string())

    # Unseen series: batched forecasts from each window's history, no refit.
    ends = np.arange(len(data) - 30 * 24, len(data) - HORIZON, HORIZON)
    scores = {}
    for name in unseen:
        values = data[name].to_numpy(dtype=float)
        histories = [values[end - CONTEXT:end] for end in ends]
        future = np.stack([values[end:end + HORIZON] for end in ends])
        forecast = forecaster.predict_histories(histories)
        naive = np.stack([values[end - 24:end] for end in ends])  # seasonal naive, period 24
        scores[name] = {"TRACE MAE": np.abs(forecast - future).mean(), "seasonal naive MAE": np.abs(naive - future).mean()}
    table = pd.DataFrame(scores).T
    print(f"\nunseen series, {len(ends)} windows of the last 30 days each:")
    print(table.round(3).to_string())
    return {"panel_mae": mae, "unseen": table}


if __name__ == "__main__":
    main()
