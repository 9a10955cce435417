"""Many channels in Darts: fit time and peak memory against the channel count.

``python -m benchmarks.many_channels [--channels 7 64 321]`` fits the default ``TraceModel``
(context 512, horizon 96) on Electricity-shaped synthetic series (26,304 hourly steps, the
first 70 % to train, the next 10 % to validate: daily and weekly cycles, each channel
its own level) and records the fit's wall time and peak resident memory above the level
before it into ``results/many_channels.json``. A Darts batch holds ``batch_size // C``
samples of all ``C`` channels, at least one, so memory grows with ``C``; this benchmark
shows by how much (``docs/design.md``, "Few samples of many channels split by window").
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from benchmarks.harness import PeakMemory, Record, main, timed

CHANNELS = (7, 64, 321)
STEPS, CONTEXT, HORIZON = 26_304, 512, 96


def electricity_shaped(channels: int, steps: int = STEPS, seed: int = 0) -> pd.DataFrame:
    """``channels`` hourly load-like series: daily and weekly cycles, noise, own levels."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    level = rng.gamma(2.0, 100.0, channels)
    shape = 1 + 0.3 * np.sin(2 * np.pi * t / 24 + rng.uniform(0, 6, channels)) + 0.1 * np.sin(2 * np.pi * t / 168)
    values = level * shape + rng.normal(0, 1, (steps, channels)) * level * 0.05
    return pd.DataFrame(values.astype(np.float32), index=pd.date_range("2016-07-01", periods=steps, freq="h"))


def options(parser) -> None:
    parser.add_argument("--channels", type=int, nargs="+", default=list(CHANNELS))


def run(args, record: Record) -> None:
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel

    record.protocol.update(steps=STEPS, context=CONTEXT, horizon=HORIZON)
    for channels in args.channels:
        series = TimeSeries.from_dataframe(electricity_shaped(channels))
        train_end, val_end = int(STEPS * 0.7), int(STEPS * 0.8)
        train, val = series[:train_end], series[train_end - CONTEXT : val_end]
        model = TraceModel(input_chunk_length=CONTEXT, output_chunk_length=HORIZON, random_state=0,
                           pl_trainer_kwargs={"enable_progress_bar": False, "enable_model_summary": False})
        gc.collect()
        with PeakMemory() as memory, timed() as seconds:
            model.fit(train, val_series=val)
        forecast = model.predict(HORIZON, series=series[:val_end], verbose=False).values()
        record.add({"channels": channels, "fit_seconds": round(seconds(), 1),
                    "peak_above_start_gb": round((memory.peak_rss - memory.start_rss) / 2**30, 2),
                    "finite": bool(np.isfinite(forecast).all())})
        del model, series, train, val


if __name__ == "__main__":
    main(__name__)
