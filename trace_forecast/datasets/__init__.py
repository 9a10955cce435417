"""Data sets: the packaged ETTh1 (offline quick-start) and the shared evaluation data.

ETTh1 ships gzip-compressed and unmodified, with its CC BY-ND 4.0 licence
(``LICENSE-ETT``, ``NOTICE-ETT``). Other data sets are read from ``TRACE_DATA_DIR``
(default ``../shared/data``) and are never copied into the package.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from trace_forecast.errors import DataError

PACKAGE_DIR = Path(__file__).resolve().parent
# ETTh1's standard borders (Informer / Autoformer protocol), in rows.
ETT_HOURLY_BORDERS = (8640, 11520, 14400)


def shared_data_dir() -> Path:
    """``TRACE_DATA_DIR`` or ``../shared/data`` relative to the working directory."""
    return Path(os.environ.get("TRACE_DATA_DIR", "../shared/data"))


def load_etth1() -> pd.DataFrame:
    """ETTh1 as a DataFrame with an hourly ``DatetimeIndex`` and 7 float columns (target ``OT``)."""
    frame = pd.read_csv(PACKAGE_DIR / "ETTh1.csv.gz", parse_dates=["date"], index_col="date")
    frame.index.freq = pd.infer_freq(frame.index)
    return frame.astype("float64")


@dataclass(frozen=True)
class Split:
    """Train / validation / test frames of the standard protocol, standardised with
    the training rows' statistics. Validation and test start ``lookback`` rows early so
    that their first window forecasts the first row of the split."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    mean: pd.Series
    std: pd.Series


def standard_split(frame: pd.DataFrame, lookback: int, borders: tuple[int, int, int] = ETT_HOURLY_BORDERS) -> Split:
    """The ETT standard split (train ``[0, b1)``, val ``[b1-L, b2)``, test ``[b2-L, b3)``)."""
    b1, b2, b3 = borders
    if len(frame) < b3:
        raise DataError(f"need at least {b3} rows for this split, got {len(frame)}")
    train = frame.iloc[:b1]
    mean, std = train.mean(), train.std(ddof=0)
    scale = lambda part: (part - mean) / std  # noqa: E731
    return Split(
        scale(train),
        scale(frame.iloc[max(0, b1 - lookback) : b2]),
        scale(frame.iloc[max(0, b2 - lookback) : b3]),
        mean,
        std,
    )


def ratio_split(frame: pd.DataFrame, lookback: int, train: float = 0.7, test: float = 0.2) -> Split:
    """70 / 10 / 20 chronological split (ILI protocol) with the same conventions."""
    n = len(frame)
    n_train, n_test = int(n * train), int(n * test)
    return standard_split(frame, lookback, (n_train, n - n_test, n))


def rolling_windows(values: np.ndarray, lookback: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """Every (history, future) pair with stride 1: ``[n, lookback]``, ``[n, horizon]``."""
    n = len(values) - lookback - horizon + 1
    if n < 1:
        raise DataError(f"series of {len(values)} rows is too short for lookback {lookback} + horizon {horizon}")
    idx = np.arange(n)[:, None]
    return values[idx + np.arange(lookback)], values[idx + lookback + np.arange(horizon)]


def inject_anomalies(y: pd.Series, start: int, seed: int = 0) -> tuple[pd.Series, np.ndarray]:
    """A copy of ``y`` with three labelled anomalies after ``start`` -- a 3-step spike
    (+4 standard deviations) at ``start + 1500``, a 48-step level shift (+2) at
    ``start + 4000`` and a 72-step noise burst (1.5) at ``start + 6500`` -- and the boolean
    labels. The examples' test bed: ``y`` itself is not changed."""
    rng = np.random.default_rng(seed)
    x, labels = y.copy(), np.zeros(len(y), dtype=bool)
    scale = y.std()
    spike, shift, burst = start + 1500, start + 4000, start + 6500
    if burst + 72 > len(y):
        raise DataError(f"y needs at least {burst + 72} values to hold the anomalies after step {start}")
    x.iloc[spike : spike + 3] += 4 * scale
    x.iloc[shift : shift + 48] += 2 * scale
    x.iloc[burst : burst + 72] += rng.normal(0, 1.5 * scale, 72)
    for first, length in ((spike, 3), (shift, 48), (burst, 72)):
        labels[first : first + length] = True
    return x, labels
