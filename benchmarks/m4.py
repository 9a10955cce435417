"""Short horizon: M4 Hourly (414 series, H = 48), sMAPE, MASE (seasonality 24), OWA vs Naive2.

One global model per method is fitted on the 414 training series (their last 20 % of
windows validate) and forecasts the 48 values after each. Naive2 follows the M4 guide:
seasonal naive on the seasonally adjusted series (classical multiplicative decomposition,
applied when the lag-24 autocorrelation passes the 90 % test), re-seasonalised.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.harness import METHODS, PeakMemory, Profile, main, require, seeds_of, suite_runner, timed
from trace_forecast.datasets import shared_data_dir
from trace_forecast.metrics import owa

HORIZON, PERIOD, CONTEXT = 48, 24, 512


def load_m4_hourly() -> tuple[list[np.ndarray], np.ndarray]:
    folder = shared_data_dir() / "forecasting" / "M4"
    train = pd.read_csv(require(folder / "Hourly-train.csv"), index_col=0)
    test = pd.read_csv(require(folder / "Hourly-test.csv"), index_col=0)
    histories = [row.dropna().to_numpy(np.float64) for _, row in train.iterrows()]
    return histories, test.to_numpy(np.float64)


def _seasonality_test(x: np.ndarray, m: int) -> bool:
    """M4's 90 % autocorrelation test for seasonality at lag ``m``."""
    if len(x) < 3 * m:
        return False
    x = x - x.mean()
    acf = np.array([np.sum(x[k:] * x[: len(x) - k]) for k in range(m + 1)]) / np.sum(x * x)
    limit = 1.645 * np.sqrt((1 + 2 * np.sum(acf[1:m] ** 2)) / len(x))
    return abs(acf[m]) > limit


def _seasonal_indices(x: np.ndarray, m: int) -> np.ndarray:
    """Classical multiplicative decomposition: the ``m`` seasonal indices of ``x``."""
    trend = pd.Series(x).rolling(m, center=True).mean().rolling(2, center=True).mean().shift(-1).to_numpy()
    ratio = x / trend
    idx = np.array([np.nanmean(ratio[i::m]) for i in range(m)])
    return idx / idx.mean()


def naive2(history: np.ndarray, horizon: int = HORIZON, m: int = PERIOD) -> np.ndarray:
    if _seasonality_test(history, m):
        idx = _seasonal_indices(history, m)
        season = idx[np.arange(len(history)) % m]
        level = history[-1] / season[-1]
        future = idx[(len(history) + np.arange(horizon)) % m]
        return level * future
    return np.repeat(history[-1], horizon)


def seasonal_naive(history: np.ndarray, horizon: int = HORIZON, m: int = PERIOD) -> np.ndarray:
    return np.tile(history[-m:], -(-horizon // m))[:horizon]


def scores(histories, futures, preds) -> tuple[float, float]:
    """Mean sMAPE and mean MASE over series (M4 definitions)."""
    s, m = [], []
    for h, y, p in zip(histories, futures, preds, strict=True):
        s.append(np.mean(200 * np.abs(y - p) / (np.abs(y) + np.abs(p))))
        m.append(np.mean(np.abs(y - p)) / np.mean(np.abs(h[PERIOD:] - h[:-PERIOD])))
    return float(np.mean(s)), float(np.mean(m))


def run_trace(params: dict, profile: Profile, seed: int, histories) -> tuple[np.ndarray, dict]:
    from trace_forecast import TraceForecaster

    frame = pd.concat(
        {i: pd.DataFrame({"y": h}) for i, h in enumerate(histories)}, names=["series", "t"]
    )
    forecaster = TraceForecaster(**params, context_length=CONTEXT, max_epochs=profile.epochs,
                                 max_windows=profile.max_windows, random_state=seed)
    with PeakMemory() as mem, timed() as fit_time:
        forecaster.fit(frame, fh=np.arange(1, HORIZON + 1))
    with timed() as predict_time:
        pred = forecaster.predict_histories(histories)
    fitted = forecaster.get_fitted_params()
    return pred, {
        "trainable_parameters": int(fitted["total_trainable"]), "fit_seconds": fit_time(),
        "predict_windows_per_s": len(histories) / predict_time(), "peak_rss_mb": mem.peak_rss / 2**20,
        "peak_cuda_mb": None if mem.peak_cuda is None else mem.peak_cuda / 2**20,
    }


def run_nlinear(profile: Profile, seed: int, histories) -> tuple[np.ndarray, dict]:
    """Darts NLinear (paper configuration), one global model on the 414 series, input 2 x 48.
    Each series is min-max scaled by Darts' ``Scaler`` (one scaler per series, fitted on its
    training part) and forecasts are scaled back: unscaled, series whose values differ by
    orders of magnitude make the global model's loss diverge (sMAPE 40 in a first run)."""
    from darts import TimeSeries
    from darts.dataprocessing.transformers import Scaler
    from darts.models import NLinearModel

    scaler = Scaler()
    series = scaler.fit_transform([TimeSeries.from_values(h.astype(np.float32)) for h in histories])
    model = NLinearModel(input_chunk_length=2 * HORIZON, output_chunk_length=HORIZON, normalize=True,
                         shared_weights=True, n_epochs=profile.darts_epochs, random_state=seed,
                         pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False,
                                            "accelerator": "cpu"})
    with PeakMemory() as mem, timed() as fit_time:
        model.fit(series, verbose=False)
    with timed() as predict_time:
        scaled = model.predict(n=HORIZON, series=series, verbose=False)
        pred = np.stack([p.values()[:, 0] for p in scaler.inverse_transform(scaled)])
    return pred, {
        "trainable_parameters": int(sum(p.numel() for p in model.model.parameters())), "fit_seconds": fit_time(),
        "predict_windows_per_s": len(histories) / predict_time(), "peak_rss_mb": mem.peak_rss / 2**20,
        "peak_cuda_mb": None,
    }


def suite(profile: Profile, record, methods=None) -> None:
    histories, futures = load_m4_hourly()
    base = {"dataset": "M4 Hourly", "horizon": HORIZON, "test_windows": len(histories), "profile": profile.name}
    n2 = np.stack([naive2(h) for h in histories])
    s_n2, m_n2 = scores(histories, futures, n2)
    record.add({**base, "method": "Naive2", "seed": None, "family": "baseline", "smape": s_n2, "mase": m_n2,
                "owa": 1.0, "trainable_parameters": 0})
    snaive = np.stack([seasonal_naive(h) for h in histories])
    s, m = scores(histories, futures, snaive)
    record.add({**base, "method": "seasonal naive (24)", "seed": None, "family": "baseline", "smape": s, "mase": m,
                "owa": owa(s, m, s_n2, m_n2), "trainable_parameters": 0})
    for method in ("TRACE", "TRACE zero-shot", "linear probing", "LoRA (PEFT) + recon head"):
        if (methods and method not in methods) or (profile.methods and method not in profile.methods):
            continue
        for seed in seeds_of(METHODS[method], profile):
            pred, extra = run_trace(METHODS[method], profile, seed, histories)
            s, m = scores(histories, futures, pred)
            record.add({**base, "method": method, "seed": seed, "family": "trace", "smape": s, "mase": m,
                        "owa": owa(s, m, s_n2, m_n2), **extra})
    for seed in profile.seeds if not methods or "NLinear" in methods else ():
        pred, extra = run_nlinear(profile, seed, histories)
        s, m = scores(histories, futures, pred)
        record.add({**base, "method": "Darts NLinear", "seed": seed, "family": "peer", "smape": s, "mase": m,
                    "owa": owa(s, m, s_n2, m_n2), **extra})


KEY, options, result_name, run = suite_runner(__name__, suite)

if __name__ == "__main__":
    main(__name__)
