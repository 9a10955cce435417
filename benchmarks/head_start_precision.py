"""Precision of the closed-form head start's frozen features: fp32, bf16 autocast, int8.

The default ``TraceForecaster()`` on ETTh1 (H = 96, every 4th test window), seeds 0-4,
with the head start's features computed in each precision (fine-tuning and prediction
are the same for all: fp32 predictions, ``TRACE_FORECAST_PRECISION=fp32``). Fit seconds
are printed too, on this machine's CPU; ``benchmarks/cpu_speed.py`` measures the default
policy against NLinear.

``python -m benchmarks.head_start_precision`` (about 3 min on 2 cores) writes
``benchmarks/results/head_start_precision.json``.
"""

from __future__ import annotations

import contextlib
import os
import time

import numpy as np
import torch

from benchmarks.harness import Record, channel_windows, main
from benchmarks.recipe_sweep import HORIZON, LOOKBACK, score_etth1

SEEDS = (0, 1, 2, 3, 4)


def features_in(variant: str):
    """A replacement for the head start's feature context in ``variant``'s precision."""
    from trace_forecast.engine import precision

    @contextlib.contextmanager
    def chosen(network, device):
        if variant == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                yield network
        elif variant == "int8":
            yield precision._quantized_copy(network)
        else:
            yield network

    return chosen


KEY = ("head_start_features", "seed")


def run(args, record: Record) -> None:
    import trace_forecast.engine.recipe as recipe
    from trace_forecast import TraceForecaster
    from trace_forecast.datasets import load_etth1, standard_split

    os.environ["TRACE_FORECAST_PRECISION"] = "fp32"  # predictions in fp32 for every variant
    split = standard_split(load_etth1(), LOOKBACK)
    hist, fut = channel_windows(split.test, LOOKBACK, HORIZON, 4)
    fh = np.arange(1, HORIZON + 1)
    saved = recipe.head_start_features
    try:
        for variant in ("fp32", "bf16", "int8"):
            recipe.head_start_features = features_in(variant)
            for seed in SEEDS:
                forecaster = TraceForecaster(random_state=seed)
                start = time.perf_counter()
                forecaster.fit(split.train, fh=fh)
                record.add({"head_start_features": variant, "seed": seed, "fit_seconds": time.perf_counter() - start,
                            "test_stride": 4, **score_etth1(forecaster, hist, fut)})
    finally:
        recipe.head_start_features = saved


if __name__ == "__main__":
    main(__name__)
