"""Input checks and the internal validation split of the Darts integration."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from darts import TimeSeries

from trace_forecast.errors import DataError, SmallUnitsWarning
from trace_forecast.tasks.conditioning import Conditioning


def as_list(series: TimeSeries | Sequence[TimeSeries]) -> list[TimeSeries]:
    return [series] if isinstance(series, TimeSeries) else list(series)


def check_series(series: TimeSeries | Sequence[TimeSeries], name: str, min_length: int) -> None:
    """Raise a :class:`DataError` naming the first series that is not a numeric
    ``TimeSeries`` of at least ``min_length`` steps, holds an infinite value, or has a
    component with no observed value. Missing values (NaN) are allowed: the model masks
    them (``docs/user_guide.md``, "Missing values")."""
    items = as_list(series)
    if not items:
        raise DataError(f"`{name}` is empty")
    for i, ts in enumerate(items):
        label = f"`{name}`" if isinstance(series, TimeSeries) else f"`{name}[{i}]`"
        if not isinstance(ts, TimeSeries):
            raise DataError(f"{label} must be a darts TimeSeries, got {type(ts).__name__}")
        values = ts.values(copy=False)
        if not np.issubdtype(values.dtype, np.floating):
            raise DataError(f"{label} must hold floating-point values, got dtype {values.dtype}")
        if len(ts) < min_length:
            raise DataError(
                f"{label} has {len(ts)} time steps, too short for one window: TraceModel needs at least "
                f"{min_length} (input_chunk_length + output_chunk_length when fitting, "
                "the minimum input_chunk_length when predicting)"
            )
        bad = np.isinf(values)
        if bad.any():
            first = ts.time_index[int(np.argwhere(bad)[0][0])]
            raise DataError(f"{label} contains {int(bad.sum())} infinite values (first at {first}); replace them "
                            "(NaN marks a missing value)")
        empty = [str(c) for c, observed in zip(ts.components, np.isfinite(values).reshape(len(ts), len(ts.components), -1).any(axis=(0, 2)), strict=True)
                 if not observed]
        if empty:
            raise DataError(f"{label} has no observed value in component(s) {empty[:5]} (all missing)")


def warn_small_units(series: TimeSeries | Sequence[TimeSeries], name: str) -> None:
    """A :class:`SmallUnitsWarning` naming the first series with a component in tiny units
    (the range :mod:`trace_forecast.tasks.conditioning` would scale up)."""
    for i, ts in enumerate(as_list(series)):
        values = ts.values(copy=False)
        for k, component in enumerate(ts.components):
            if Conditioning.of(values[:, k]).scale != 1.0:
                label = f"`{name}`" if isinstance(series, TimeSeries) else f"`{name}[{i}]`"
                spread = float(np.nanstd(values[:, k]))
                warnings.warn(f"{label} component {component!r} has a spread of {spread:.2g}: TraceModel sees Darts' "
                              "windows, not whole series, so RevIN's absolute 1e-5 floor flattens such small values "
                              "(the airline data times 1e-6 forecast 2 % off); scale the series first, e.g. with "
                              "darts.dataprocessing.transformers.Scaler", SmallUnitsWarning, stacklevel=3)
                return


def split_for_validation(
    series: TimeSeries | Sequence[TimeSeries], fraction: float, min_length: int, context: int
) -> tuple[list[TimeSeries], list[TimeSeries] | None, list[int]]:
    """Hold out the last ``fraction`` of every series long enough for it: ``(training parts,
    held-out parts or None, the index of each held-out part's series)``.

    A held-out part starts ``context`` steps before the split point, so its first window
    forecasts the first held-out step. Series too short to split train whole.
    """
    train, val, sources = [], [], []
    for ts in as_list(series):
        n_val = int(round(len(ts) * fraction))
        split = len(ts) - n_val
        if n_val < 1 or split < min_length:
            train.append(ts)
            continue
        head = ts[:split]
        tail = ts[max(0, split - context):]
        train.append(head)
        if len(tail) >= min_length:
            val.append(tail)
            sources.append(len(train) - 1)
    return train, (val or None), sources


def series_units(series: TimeSeries | Sequence[TimeSeries], units_of: Sequence[TimeSeries] | None = None
                 ) -> list[TimeSeries]:
    """Each series' unit per component (:func:`trace_forecast.engine.windows.series_scale`,
    the standard deviation), as a constant ``TimeSeries`` on its time index. TraceModel
    hands these to Darts as its internal ``sample_weight``, the one per-series channel
    Darts carries into training batches, and weighs each window's errors by them
    (:func:`trace_forecast.losses.window_weights`). ``units_of[i]`` (default: the series
    itself) is the series whose values set series ``i``'s unit."""
    from trace_forecast.engine.windows import series_scale

    items = as_list(series)
    sources = items if units_of is None else list(units_of)
    out = []
    for ts, source in zip(items, sources, strict=True):
        values = source.values(copy=False)
        units = np.array([series_scale(values[:, c]) for c in range(values.shape[1])], dtype=values.dtype)
        out.append(TimeSeries.from_times_and_values(ts.time_index, np.tile(units, (len(ts), 1))))
    return out
