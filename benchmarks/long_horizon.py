"""Long-horizon forecasting: ETTh1 (H = 96/192/336/720) and ILI (H = 24/36/48/60).

Protocol (``../shared/data/README.md``): lookback 512 (ILI: 512 too, the split allows it;
shorter training contexts are masked; and ILI's standard 104 as the data set "ILI (L = 104)"), all channels forecast independently,
train-set standardisation, MSE/MAE over the test windows. The ``quick`` profile scores
every ``test_stride``-th test origin and trains on a random subset of windows.

Every TRACE-family method runs on the same embedded backbone through ``TraceForecaster``;
peers: seasonal naive, Darts ``NLinearModel``/``DLinearModel`` (paper configuration:
``normalize=True``/``shared_weights=True``, best epoch on validation) and sktime's
``MomentFMForecaster`` on our backbone exported in MOMENT layout.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import (
    ABLATIONS,
    METHODS,
    PeakMemory,
    Profile,
    channel_windows,
    main,
    require,
    seeds_of,
    suite_runner,
    timed,
)
from trace_forecast.datasets import Split, load_etth1, ratio_split, rolling_windows, shared_data_dir, standard_split
from trace_forecast.metrics import mae, mse, seasonal_naive

LOOKBACK = 512
DATASETS = {
    "ETTh1": {"horizons": (96, 192, 336, 720), "period": 24},
    "ILI": {"horizons": (24, 36, 48, 60), "period": 52},
    # The standard ILI setting: a 104-week lookback (left-padded into the backbone's context).
    "ILI (L = 104)": {"horizons": (24, 36, 48, 60), "period": 52, "lookback": 104},
}


def lookback_of(name: str) -> int:
    return DATASETS[name].get("lookback", LOOKBACK)


def load_ili() -> pd.DataFrame:
    """ILI (``../shared/data/forecasting/illness``), its 7 columns as floats, indexed by date."""
    path = require(shared_data_dir() / "forecasting" / "illness" / "national_illness.csv")
    return pd.read_csv(path, index_col="date", parse_dates=True).astype("float64")


def load_split(name: str) -> Split:
    if name == "ETTh1":
        return standard_split(load_etth1(), LOOKBACK)
    return ratio_split(load_ili(), lookback_of(name))


def fit_rows(split: Split, lookback: int = LOOKBACK) -> tuple[pd.DataFrame, float]:
    """Train + validation rows, and the validation share that is exactly the val rows."""
    rows = pd.concat([split.train, split.val.iloc[lookback:]])
    return rows, (len(split.val) - lookback) / len(rows)


def run_trace(split, horizon, method, params, profile: Profile, seed: int, hist, fut, lookback: int = LOOKBACK) -> dict:
    from trace_forecast import TraceForecaster

    rows, val_share = fit_rows(split, lookback)
    forecaster = TraceForecaster(
        **params, context_length=lookback, max_epochs=profile.epochs, max_windows=profile.max_windows,
        validation_fraction=val_share, random_state=seed,
    )
    with PeakMemory() as mem, timed() as fit_time:
        forecaster.fit(rows, fh=np.arange(1, horizon + 1))
    with timed() as predict_time:
        pred = forecaster.predict_histories(list(hist))
    fitted = forecaster.get_fitted_params()
    return {
        "mse": mse(fut, pred), "mae": mae(fut, pred),
        "trainable_parameters": int(fitted["total_trainable"]),
        "fit_seconds": fit_time(), "predict_windows_per_s": len(hist) / predict_time(),
        "peak_rss_mb": mem.peak_rss / 2**20, "peak_cuda_mb": None if mem.peak_cuda is None else mem.peak_cuda / 2**20,
        "kept_modules": int(fitted["selected_modules"]["kept"].sum()) if len(fitted["selected_modules"]) else None,
    }


def run_darts_linear(kind: str, split, horizon, profile: Profile, seed: int, stride: int,
                     lookback: int = LOOKBACK) -> dict:
    from darts import TimeSeries
    from darts.models import DLinearModel, NLinearModel

    cls = NLinearModel if kind == "NLinear" else DLinearModel
    extra = {"normalize": True} if kind == "NLinear" else {}
    as_ts = lambda frame: TimeSeries.from_values(frame.to_numpy(np.float32))  # noqa: E731
    with tempfile.TemporaryDirectory() as work:
        model = cls(
            input_chunk_length=lookback, output_chunk_length=horizon, shared_weights=True, n_epochs=profile.darts_epochs,
            batch_size=32, random_state=seed, save_checkpoints=True, work_dir=work, model_name=f"{kind}_{horizon}",
            force_reset=True, optimizer_kwargs={"lr": 1e-3},
            pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False, "accelerator": "cpu"},
            **extra,
        )
        with PeakMemory() as mem, timed() as fit_time:
            model.fit(as_ts(split.train), val_series=as_ts(split.val), load_best=True, verbose=False)
        test = as_ts(split.test)
        with timed() as predict_time:
            forecasts = model.historical_forecasts(
                test, start=lookback, start_format="position", forecast_horizon=horizon, stride=stride,
                retrain=False, last_points_only=False, overlap_end=False, verbose=False,
            )
        pred = np.stack([f.values() for f in forecasts])              # [n, H, C]
        values = split.test.to_numpy(np.float32)
        starts = np.arange(lookback, lookback + stride * len(forecasts), stride)
        truth = np.stack([values[s : s + horizon] for s in starts])
    n_params = sum(p.numel() for p in model.model.parameters() if p.requires_grad)
    return {
        "mse": mse(truth, pred), "mae": mae(truth, pred), "trainable_parameters": int(n_params),
        "fit_seconds": fit_time(), "predict_windows_per_s": pred.shape[0] * pred.shape[2] / predict_time(),
        "peak_rss_mb": mem.peak_rss / 2**20, "peak_cuda_mb": None, "kept_modules": None,
    }


REVIN_LINEAR_ALPHA = 1e-3  # ridge penalty relative to the mean energy of the normalised inputs


def run_revin_linear(split, horizon, hist, fut, lookback: int = LOOKBACK) -> dict:
    """A RevIN linear model: every window normalised by its own mean and standard deviation,
    one linear map ``lookback -> horizon`` shared by all channels, solved in closed form
    (light ridge) on every training and validation window. Deterministic: no seeds."""
    rows, _ = fit_rows(split, lookback)
    xs, ys = [], []
    for column in rows.columns:
        x, y = rolling_windows(rows[column].to_numpy(np.float64), lookback, horizon)
        xs.append(x)
        ys.append(y)
    x, y = np.concatenate(xs), np.concatenate(ys)
    with timed() as fit_time:
        mean, std = x.mean(1, keepdims=True), x.std(1, keepdims=True) + 1e-5
        xn, yn = (x - mean) / std, (y - mean) / std
        xb = np.hstack([xn, np.ones((len(xn), 1))])
        gram = xb.T @ xb
        penalty = REVIN_LINEAR_ALPHA * np.trace(gram[:-1, :-1]) / lookback * np.eye(lookback + 1)
        penalty[-1, -1] = 0.0
        coef = np.linalg.solve(gram + penalty, xb.T @ yn)
    with timed() as predict_time:
        h = hist.astype(np.float64)
        m, sd = h.mean(1, keepdims=True), h.std(1, keepdims=True) + 1e-5
        pred = (np.hstack([(h - m) / sd, np.ones((len(h), 1))]) @ coef) * sd + m
    return {"mse": mse(fut, pred), "mae": mae(fut, pred), "trainable_parameters": int(coef.size),
            "fit_seconds": fit_time(), "predict_windows_per_s": len(hist) / predict_time(),
            "peak_rss_mb": None, "peak_cuda_mb": None, "kept_modules": None}


def export_for_sktime(folder: Path) -> tuple[str, str]:
    """The embedded backbone in MOMENT layout plus a local T5 folder (nothing downloads)."""
    from transformers import T5Config, T5EncoderModel

    from trace_forecast.backbone import save_backbone, shared_backbone

    backbone = shared_backbone(None)
    save_backbone(backbone, folder / "moment")
    T5EncoderModel(T5Config(**backbone.config.t5_config)).save_pretrained(folder / "t5")
    return str(folder / "moment"), str(folder / "t5")


def run_sktime_moment(split, horizon, profile: Profile, seed: int, hist, fut) -> dict:
    """sktime's MomentFMForecaster (its own training loop: linear probing with one-cycle,
    MOMENT's recipe) on our backbone, trained on every training window (no subsampling:
    its best setting), scored on the same test windows through its fitted model."""
    import torch
    from sktime.forecasting.momentfm import MomentFMForecaster

    torch.manual_seed(seed)
    rows, _ = fit_rows(split)
    with tempfile.TemporaryDirectory() as work:
        moment_dir, t5_dir = export_for_sktime(Path(work))
        forecaster = MomentFMForecaster(
            pretrained_model_name_or_path=moment_dir, transformer_backbone=t5_dir, epochs=profile.epochs,
            batch_size=32, device="cpu", train_val_split=0.0, dropout=0.0, head_dropout=0.0,
        )
        with PeakMemory() as mem, timed() as fit_time:
            forecaster.fit(rows, fh=np.arange(1, horizon + 1))
        model = forecaster.model.eval()
        preds = []
        with timed() as predict_time, torch.no_grad():
            for i in range(0, len(hist), 256):
                x = torch.from_numpy(hist[i : i + 256]).float()[:, None, :]
                preds.append(model(x_enc=x, input_mask=torch.ones(len(x), LOOKBACK)).forecast[:, 0].numpy())
        pred = np.concatenate(preds)
        n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "mse": mse(fut, pred), "mae": mae(fut, pred), "trainable_parameters": int(n_params),
        "fit_seconds": fit_time(), "predict_windows_per_s": len(hist) / predict_time(),
        "peak_rss_mb": mem.peak_rss / 2**20, "peak_cuda_mb": None, "kept_modules": None,
    }


def suite(profile: Profile, record, datasets=tuple(DATASETS), horizons=None, methods=None) -> None:
    for name in datasets:
        split = load_split(name)
        period = DATASETS[name]["period"]
        lookback = lookback_of(name)
        for horizon in horizons or DATASETS[name]["horizons"]:
            hist, fut = channel_windows(split.test, lookback, horizon, profile.test_stride)
            base = {"dataset": name, "horizon": horizon, "test_windows": len(hist), "profile": profile.name}
            naive = seasonal_naive(hist, horizon, period=period)
            record.add({**base, "method": f"seasonal naive ({period})", "seed": None, "mse": mse(fut, naive),
                        "mae": mae(fut, naive), "trainable_parameters": 0, "family": "baseline"})
            if not methods or "RevIN linear" in methods:
                record.add({**base, "method": "RevIN linear", "seed": None, "family": "baseline",
                            **run_revin_linear(split, horizon, hist, fut, lookback)})
            table = {m: p for m, p in METHODS.items() if profile.methods is None or m in profile.methods}
            if name == "ETTh1" and horizon == 96 and profile.methods is None:
                table.update(ABLATIONS)
            for method, params in table.items():
                if methods and method not in methods:
                    continue
                for seed in seeds_of(params, profile):
                    r = run_trace(split, horizon, method, params, profile, seed, hist, fut, lookback)
                    record.add({**base, "method": method, "seed": seed, "family": "trace", **r})
            for kind in ("NLinear", "DLinear"):
                if (methods and kind not in methods) or (profile.methods and f"Darts {kind}" not in profile.methods):
                    continue
                for seed in profile.seeds:
                    r = run_darts_linear(kind, split, horizon, profile, seed, profile.test_stride, lookback)
                    record.add({**base, "method": f"Darts {kind}", "seed": seed, "family": "peer", **r})
            if name == "ETTh1" and horizon == 96 and profile.methods is None and (
                    not methods or "sktime MomentFM" in methods):
                for seed in profile.seeds:
                    r = run_sktime_moment(split, horizon, profile, seed, hist, fut)
                    record.add({**base, "method": "sktime MomentFMForecaster", "seed": seed, "family": "peer", **r})


KEY, options, result_name, run = suite_runner(__name__, suite)

if __name__ == "__main__":
    main(__name__)
