"""pandas <-> arrays for the sktime estimators: validation, instances, channels."""

from __future__ import annotations

import numpy as np
import pandas as pd

from trace_forecast.errors import DataError


def as_frame(data, name: str = "X") -> pd.DataFrame:
    """A DataFrame view of a Series, DataFrame or 1-/2-d array."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, pd.Series):
        return data.to_frame()
    array = np.asarray(data)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{name} must be 1- or 2-dimensional, got shape {array.shape}")
    return pd.DataFrame(array)


def check_frame(y: pd.DataFrame, name: str = "y", covariates: bool = False) -> None:
    """Raise a specific error for empty, non-numeric or infinite data, or a column with no
    observed value (of any instance). Missing values (NaN) are allowed: the model masks them.
    ``covariates``: boolean columns and columns without values (rows yet to come) are fine."""
    if len(y) == 0 or y.shape[1] == 0:
        raise DataError(f"{name} is empty")
    bad = [c for c in y.columns if not pd.api.types.is_numeric_dtype(y[c])
           or (pd.api.types.is_bool_dtype(y[c]) and not covariates)]
    if bad:
        raise DataError(f"{name} has non-numeric column(s) {bad}; convert or drop them first")
    values = y.to_numpy(dtype=float)
    if np.isinf(values).any():
        raise DataError(f"{name} contains infinite values; replace them (NaN marks a missing value)")
    if np.isnan(values).any() and not covariates:
        empty = [f"column {c!r}" + (f" of instance {key!r}" if key else "")
                 for key, frame in instances(y) for c in frame.columns if frame[c].isna().all()]
        if empty:
            raise DataError(f"{name} has no observed value in {', '.join(empty[:5])}{' ...' if len(empty) > 5 else ''} "
                            "(all missing): nothing to learn or forecast from")


def aligned(frame: pd.DataFrame, fitted: list, name: str = "X", fitted_on: str = "the estimator was fitted on") -> pd.DataFrame:
    """``frame`` with the ``fitted`` columns in their order: by name where both sides have
    names (the same names in another order are reordered; other names raise), by position
    (renamed) for one column or where either side has the default ``0, 1, ...`` of an
    array. Reading by position alone silently mixed up reordered columns."""
    columns = list(frame.columns)
    if len(columns) != len(fitted):
        raise DataError(f"{name} has {len(columns)} columns but {fitted_on} {len(fitted)}")
    if columns == list(fitted):
        return frame
    if len(columns) == 1 or _positional(columns) or _positional(fitted):
        return frame.set_axis(list(fitted), axis=1)
    if set(columns) != set(fitted):
        raise DataError(f"{name} has columns {columns} but {fitted_on} {list(fitted)}")
    return frame[list(fitted)]


def _positional(columns: list) -> bool:
    """Whether column names are the default ``0, 1, ...`` of an array."""
    return list(columns) == list(range(len(columns)))


def time_frequency(y: pd.DataFrame, name: str = "y") -> str | None:
    """The frequency of ``y``'s ``DatetimeIndex`` (a panel's time stamps read together, as
    one instance may skip some), set or inferred; ``None`` for other indexes. Irregular
    steps raise a specific error: sktime places forecasts at ``cutoff + k * freq`` and would
    fail only at ``predict``, after the fit, with a ``TypeError`` from pandas."""
    panel = isinstance(y.index, pd.MultiIndex)
    stamps = y.index.get_level_values(-1) if panel else y.index
    if not isinstance(stamps, pd.DatetimeIndex) or len(stamps) < 3:
        return None
    stamps = stamps.unique().sort_values() if panel else stamps
    freq = stamps.freqstr if stamps.freq is not None else pd.infer_freq(stamps)
    if freq is None:
        raise DataError(f"{name}'s DatetimeIndex has irregular steps (no frequency): the forecast's time stamps "
                        f"cannot be placed; resample it (e.g. {name}.asfreq('h')) or use a RangeIndex")
    return freq


def instances(y: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """``[(instance key, frame with a plain time index)]``; one ``((), y)`` for a single series."""
    if not isinstance(y.index, pd.MultiIndex):
        return [((), y)]
    levels = list(range(y.index.nlevels - 1))
    out = []
    for key, frame in y.groupby(level=levels, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        out.append((key, frame.droplevel(levels)))
    return out


def channels(frames: list[pd.DataFrame]) -> list[np.ndarray]:
    """Every column of every frame as a float64 array (channel-independent modelling; the
    network's float32 copies come from :func:`~trace_forecast.tasks.conditioning.conditioned`)."""
    return [frame[c].to_numpy(dtype=np.float64) for frame in frames for c in frame.columns]


def assemble(
    keys: list[tuple], columns: pd.Index, index: pd.Index | list[pd.Index], values: np.ndarray,
    index_names: list | None = None,
) -> pd.DataFrame:
    """Predictions ``values [n_instances * n_columns, n_steps]`` back into a frame, at the
    time stamps ``index`` (one for all instances, or one per instance)."""
    n_cols = len(columns)
    indexes = index if isinstance(index, list) else [index] * len(keys)
    blocks = []
    for i, (key, index) in enumerate(zip(keys, indexes, strict=True)):
        block = pd.DataFrame(values[i * n_cols : (i + 1) * n_cols].T, index=index, columns=columns)
        if key:
            block.index = pd.MultiIndex.from_tuples([(*key, t) for t in index], names=index_names)
        blocks.append(block)
    return pd.concat(blocks) if len(blocks) > 1 else blocks[0]
