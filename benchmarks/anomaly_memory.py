"""Scoring long series with bounded memory: peak RSS and points/s against series length.

``python -m benchmarks.anomaly_memory`` fits the default ``TraceAnomalyDetector`` on
5,000 points of a noisy multi-seasonal synthetic series, then scores series of 10^4,
10^5 and 10^6 points (same process, one at a time) into
``results/anomaly_memory.json``: the peak resident memory above the level before each
call, the scoring throughput, and the part of the memory that grows with the length (the
``[T]`` score and count arrays: 8 bytes per point each). Windows are streamed in batches,
so the model's activations do not grow with the series. The same series are then scored by
the same fit without the shape discord (the previous default's score), and by a fit with the
previous default smoothing (``"multi-scale"``), for the cost ratios.
"""

from __future__ import annotations

import gc

import numpy as np
import pandas as pd

from benchmarks.harness import PeakMemory, Record, main, timed

LENGTHS = (10_000, 100_000, 1_000_000)


def synthetic(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return (np.sin(2 * np.pi * t / 96) + 0.5 * np.sin(2 * np.pi * t / 672) + 0.2 * rng.standard_normal(n)
            ).astype(np.float32)


def run(args, record: Record) -> None:
    """The default detector, the same fit without its shape discord, and the previous default
    smoothing (``"multi-scale"``) on the same series in the same process: the cost ratios."""
    from trace_forecast import TraceAnomalyDetector

    for smoothing, fitted_smoothing, shape_discords in (("two-span", "two-span", True),
                                                         ("two-span, no shape discord", "two-span", False),
                                                         ("multi-scale", "multi-scale", True)):
        detector = TraceAnomalyDetector(smoothing=fitted_smoothing, random_state=0).fit(
            pd.DataFrame({"x": synthetic(5_000)}))
        if not shape_discords:
            detector.shape_discords_ = None
        for n in LENGTHS:
            frame = pd.DataFrame({"x": synthetic(n, seed=1)})
            gc.collect()
            with PeakMemory() as mem, timed() as seconds:
                scores = detector.transform_scores(frame)
            record.add({"smoothing": smoothing, "points": n, "seconds": seconds(), "points_per_s": n / seconds(),
                        "peak_rss_mb": mem.peak_rss / 2**20,
                        "peak_above_start_mb": (mem.peak_rss - mem.start_rss) / 2**20,
                        "input_mb": frame.memory_usage().sum() / 2**20, "finite": bool(np.isfinite(scores).all().all())})
            del frame, scores


if __name__ == "__main__":
    main(__name__)
