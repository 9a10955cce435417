"""The main job: fine-tune the default ``TraceForecaster()`` on ETTh1 and print test metrics.

``python -m trace_forecast.quickstart`` runs offline with the embedded backbone and
the packaged ETTh1: it fits the default estimator (only ``random_state`` set) on the
standard training rows (its last 20 % validate: early stopping and Gated DSIC),
forecasts every test window (stride 1, all 7 channels, on train-standardised values)
and prints MSE/MAE next to a seasonal-naive baseline, the trainable parameters and the
wall time. It says what it is doing as it goes (``--quiet`` prints only the results;
``--verbose`` adds Lightning's progress bar and Gated DSIC's selection rounds).
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

PREDICT_CHUNKS = 20  # prediction batches, for the progress bar


def _say(message: str, quiet: bool) -> None:
    if not quiet:
        print(message, flush=True)


def run(horizon: int = 96, seed: int = 0, verbose: bool = False, quiet: bool = True, stride: int = 1) -> dict:
    """Fit and evaluate; returns the printed figures (``quiet=False`` reports progress;
    ``stride``: forecast every ``stride``-th test window of each channel)."""
    from tqdm.auto import tqdm

    from trace_forecast import TraceForecaster
    from trace_forecast.datasets import load_etth1, rolling_windows, standard_split
    from trace_forecast.metrics import mae, mse, seasonal_naive

    forecaster = TraceForecaster(random_state=seed, verbose=verbose)  # every other setting at its default
    lookback = forecaster.context_length
    split = standard_split(load_etth1(), lookback)
    rows, channels = split.train.shape
    _say(f"[1/2] fine-tuning TraceForecaster() on ETTh1's training rows ({rows:,} x {channels} channels): "
         f"closed-form head start, then {forecaster.max_epochs} epoch over {forecaster.max_windows:,} windows ...",
         quiet)
    start = time.perf_counter()
    forecaster.fit(split.train, fh=np.arange(1, horizon + 1))
    fit_seconds = time.perf_counter() - start
    _say(f"      done in {fit_seconds:.0f} s", quiet)

    histories, futures = [], []
    for column in split.test.columns:
        h, f = rolling_windows(split.test[column].to_numpy(), lookback, horizon)
        histories.append(h[::stride])
        futures.append(f[::stride])
    histories, futures = np.concatenate(histories), np.concatenate(futures)
    _say(f"[2/2] forecasting {len(histories):,} test windows (H = {horizon}) ...", quiet)
    start = time.perf_counter()
    chunks = np.array_split(np.arange(len(histories)), PREDICT_CHUNKS)
    pred = np.concatenate([
        forecaster.predict_histories(list(histories[chunk]))
        for chunk in tqdm(chunks, desc="      predicting", unit="batch", disable=quiet, file=sys.stdout)
    ])
    predict_seconds = time.perf_counter() - start
    naive = seasonal_naive(histories, horizon, period=24)
    params = forecaster.get_fitted_params()
    return {
        "horizon": horizon,
        "stride": stride,
        "test_windows": len(histories),
        "trace_mse": mse(futures, pred),
        "trace_mae": mae(futures, pred),
        "seasonal_naive_mse": mse(futures, naive),
        "seasonal_naive_mae": mae(futures, naive),
        "trainable_parameters": int(params["total_trainable"]),
        "kept_modules": int(params["selected_modules"]["kept"].sum()),
        "gated_modules": len(params["selected_modules"]),
        "blend": (params["fit_choices"]["head_start"] or {}).get("blend"),
        "persistence": (params["fit_choices"]["head_start"] or {}).get("persistence", 0.0),
        "kept": params["fit_choices"]["kept"],
        "fit_seconds": fit_seconds,
        "predict_seconds": predict_seconds,
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description="Fine-tune TRACE on ETTh1 and report test metrics.")
    parser.add_argument("--horizon", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verbose", action="store_true", help="Lightning's progress bar and Gated DSIC's rounds")
    parser.add_argument("--quiet", action="store_true", help="print only the results")
    parser.add_argument("--stride", type=int, default=1,
                        help="forecast every k-th test window (default 1: all of them, the standard protocol)")
    args = parser.parse_args(argv)
    if args.stride < 1:
        parser.error("--stride must be a positive integer")
    r = run(args.horizon, seed=args.seed, verbose=args.verbose, quiet=args.quiet, stride=args.stride)
    print(f"ETTh1, H={r['horizon']}, lookback 512, {r['test_windows']} test windows "
          f"(all channels, stride {r['stride']})")
    print(f"  TraceForecaster() (embedded backbone, Gated DSIC + reconstruction head): MSE {r['trace_mse']:.3f}  MAE {r['trace_mae']:.3f}")
    print(f"  seasonal naive (period 24):                                            MSE {r['seasonal_naive_mse']:.3f}  MAE {r['seasonal_naive_mae']:.3f}")
    kept = ("the closed-form start (fine-tuning did not improve validation)" if r["kept"] == "start"
            else f"the fine-tuned state ({r['kept']}; {r['kept_modules']}/{r['gated_modules']} gated modules)")
    share = r["persistence"]
    prior = (f"prior ({share:.0%} last value, {1 - share:.0%} zero-shot map)" if share else "zero-shot map")
    print(f"  head start: {r['blend']:.0%} fitted map, {1 - r['blend']:.0%} {prior}; kept: {kept}")
    print(f"  trainable parameters: {r['trainable_parameters']:,}")
    print(f"  wall time: fit {r['fit_seconds']:.0f} s, predict {r['predict_seconds']:.0f} s")
    return r


if __name__ == "__main__":
    main()
