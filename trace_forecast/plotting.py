"""Figures: a forecast with its intervals, anomaly scores with their detections, and what
Gated DSIC selected.

matplotlib is an optional dependency (``pip install "trace-forecast[plot]"``), imported
when a function is called, never at package import. Every function draws on new axes
(or the ``ax`` given), returns the matplotlib ``Figure``, and labels its axes.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from trace_forecast.errors import DataError

MODULE_TYPES = ("q", "k", "v", "o", "wi", "wi_0", "wi_1", "wo")  # T5 attention, then feed-forward
_BLOCK = re.compile(r"(?:^|\.)block\.(\d+)\.")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(
            'plotting needs matplotlib: pip install "trace-forecast[plot]" (or pip install matplotlib)'
        ) from error
    return plt


def _as_frame(data: Any, name: str) -> pd.DataFrame:
    """A pandas DataFrame from a Series, a DataFrame or a Darts ``TimeSeries``."""
    if hasattr(data, "to_dataframe") and hasattr(data, "time_index"):  # darts.TimeSeries
        data = data.to_dataframe()
    if isinstance(data, pd.Series):
        return data.to_frame(data.name if data.name is not None else "y")
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, np.ndarray):
        return pd.DataFrame(data.reshape(len(data), -1))
    raise DataError(f"{name} must be a pandas Series/DataFrame or a Darts TimeSeries, got {type(data).__name__}")


def _x(index: pd.Index):
    """Values matplotlib can place on an axis (periods become timestamps)."""
    return index.to_timestamp() if isinstance(index, pd.PeriodIndex) else index


def _time_axis(ax, index: pd.Index) -> None:
    """Concise date labels on a time axis (they overlap otherwise)."""
    if isinstance(index, pd.DatetimeIndex | pd.PeriodIndex):
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

        locator = AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))


# ---------------------------------------------------------------------- forecasts
def plot_forecast(y, y_pred, pred_interval=None, *, y_test=None, history: int | None = None, ax=None,
                  title: str | None = None):
    """History, forecast and (optionally) prediction intervals, one line per variable.

    Parameters
    ----------
    y : pd.Series, pd.DataFrame or darts.TimeSeries
        The observed history (the training series).
    y_pred : same type
        The point forecast (``forecaster.predict()``).
    pred_interval : pd.DataFrame, optional
        sktime's interval frame (``forecaster.predict_interval(coverage=...)``): columns
        ``(variable, coverage, "lower"/"upper")``; every coverage is shaded.
    y_test : same type as ``y``, optional
        Actual values over the forecast period, drawn for comparison.
    history : int, optional
        Show only the last ``history`` observations of ``y``.
    ax : matplotlib Axes, optional
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    observed = _as_frame(y, "y")
    forecast = _as_frame(y_pred, "y_pred")
    if history is not None:
        observed = observed.iloc[-history:]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(9, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, column in enumerate(forecast.columns):
        colour = colours[i % len(colours)]
        if column in observed:
            ax.plot(_x(observed.index), observed[column], color=colour, lw=1.2, label=f"{column} history")
        ax.plot(_x(forecast.index), forecast[column], color=colour, lw=1.8, ls="--", label=f"{column} forecast")
        if y_test is not None:
            actual = _as_frame(y_test, "y_test")
            if column in actual:
                ax.plot(_x(actual.index), actual[column], color="0.25", lw=1.0, label=f"{column} actual")
        if pred_interval is not None:
            for coverage in sorted({c[1] for c in pred_interval.columns if c[0] == column}, reverse=True):
                lower = pred_interval[(column, coverage, "lower")]
                upper = pred_interval[(column, coverage, "upper")]
                ax.fill_between(_x(lower.index), lower, upper, color=colour, alpha=0.18,
                                label=f"{column} {coverage:.0%} interval")
    _time_axis(ax, forecast.index)
    ax.set_xlabel("time")
    ax.set_ylabel("value")
    ax.set_title(title or "Forecast")
    ax.legend(loc="upper left", fontsize="small", ncol=2)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- anomalies
def _segments(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` ilocs (end exclusive) of the runs of ``True`` in ``flags``."""
    edges = np.diff(np.concatenate([[0], flags.astype(int), [0]]))
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plot_anomaly_scores(X, scores=None, threshold: float | None = None, detections=None, *, detector=None,
                        labels=None, title: str | None = None):
    """The series with its detections shaded, above the anomaly scores and the threshold.

    Give ``scores`` (and optionally ``threshold`` and ``detections``), or a fitted
    ``detector`` (:class:`~trace_forecast.TraceAnomalyDetector`), which supplies all three.

    Parameters
    ----------
    X : pd.Series, pd.DataFrame or darts.TimeSeries
        The scored series.
    scores : array-like or pd.Series, optional
        One score per time step (``detector.transform_scores(X)``).
    threshold : float, optional
        Score above which a step is flagged (drawn as a horizontal line).
    detections : array-like, optional
        Flagged ilocs (sktime's sparse ``predict`` output) or one boolean per step;
        default: the steps whose score exceeds ``threshold``.
    detector : fitted TraceAnomalyDetector, optional
    labels : array-like of bool, optional
        Known anomalies (one flag per step), shaded in a second colour for comparison.
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    frame = _as_frame(X, "X")
    n = len(frame)
    if detector is not None:
        scores = detector.transform_scores(X) if scores is None else scores
        threshold = getattr(detector, "threshold_", None) if threshold is None else threshold
    if scores is None:
        raise DataError("plot_anomaly_scores needs scores or a fitted detector")
    values = np.asarray(scores, dtype=float).reshape(-1)
    if len(values) != n:
        raise DataError(f"scores have {len(values)} values for a series of {n} steps")
    if detections is None and detector is not None:
        flagged = detector.predict(X)
        detections = flagged.iloc[:, 0].to_numpy() if isinstance(flagged, pd.DataFrame) else np.asarray(flagged)
    flags = np.zeros(n, dtype=bool)
    if detections is not None:
        det = np.asarray(detections)
        if det.dtype == bool and len(det) == n:
            flags = det
        elif len(det):
            flags[det.astype(int)] = True
    elif threshold is not None:
        flags = values > threshold
    x = _x(frame.index)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.8), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    top.plot(x, frame.to_numpy(), lw=0.8)
    bottom.plot(x, values, color="tab:purple", lw=0.9, label="anomaly score")
    positions = np.asarray(x)
    for start, end in _segments(flags):
        for axis in (top, bottom):
            axis.axvspan(positions[start], positions[min(end, n - 1)], color="tab:red", alpha=0.25, lw=0)
    if labels is not None:
        for start, end in _segments(np.asarray(labels, dtype=bool)):
            top.axvspan(positions[start], positions[min(end, n - 1)], color="tab:green", alpha=0.2, lw=0)
    if threshold is not None:
        bottom.axhline(threshold, color="tab:red", ls="--", lw=1, label=f"threshold {threshold:.3g}")
    top.set_ylabel("value")
    top.set_title(title or f"Anomaly scores ({int(flags.sum())} steps flagged)")
    bottom.set_ylabel("score")
    bottom.set_xlabel("time")
    _time_axis(bottom, frame.index)
    bottom.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------- Gated DSIC
def selection_history_of(source) -> pd.DataFrame:
    """Gated DSIC's rounds from a fitted estimator or model, or a history frame itself."""
    if isinstance(source, pd.DataFrame):
        history = source
    elif callable(getattr(source, "selection_history", None)):  # darts TraceModel
        history = source.selection_history()
    elif hasattr(source, "selection_history_"):  # sktime estimators, TraceAnomalyScorer
        history = source.selection_history_
    else:
        raise DataError(
            f"{type(source).__name__} has no Gated DSIC selection history: pass a fitted TraceForecaster, "
            "TraceAnomalyDetector, TraceModel or TraceAnomalyScorer, or their selection_history frame"
        )
    if history is None or len(history) == 0:
        raise DataError("no Gated DSIC selection rounds to plot: fit with adapter='gated_dsic' first")
    return history


def module_position(name: str) -> tuple[int, str]:
    """``(block, module type)`` of a gated module name, e.g. ``(2, "q")`` for
    ``block.2.layer.0.SelfAttention.q`` (block -1 where the name has none)."""
    match = _BLOCK.search(name)
    return (int(match.group(1)) if match else -1), name.rsplit(".", 1)[-1]


def plot_adapter_selection(source, *, title: str | None = None):
    """What Gated DSIC measured and chose: a heatmap of every gated module's importance
    over the selection rounds (pruned cells crossed out), and the final selection as a
    block x module-type grid.

    Parameters
    ----------
    source : fitted TraceForecaster, TraceAnomalyDetector, TraceModel, TraceAnomalyScorer or pd.DataFrame
        Anything with a Gated DSIC selection history (``selection_history_`` or
        ``selection_history()``), or that frame (columns ``step``, ``module``,
        ``importance``, ``kept``).
    title : str, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    plt = _pyplot()
    from matplotlib.colors import TwoSlopeNorm

    history = selection_history_of(source)
    modules = list(dict.fromkeys(history["module"]))
    modules.sort(key=lambda m: (module_position(m)[0], _type_rank(module_position(m)[1])))
    importance = history.pivot(index="module", columns="step", values="importance").loc[modules]
    kept = history.pivot(index="module", columns="step", values="kept").loc[modules].astype(bool)
    steps = list(importance.columns)
    values = importance.to_numpy(dtype=float)
    scale = float(np.nanmax(np.abs(values))) or 1.0
    norm = TwoSlopeNorm(vmin=-scale, vcenter=0.0, vmax=scale)

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(11, max(4.0, 0.2 * len(modules) + 1.6)), layout="constrained",
        gridspec_kw={"width_ratios": [max(3, len(steps)), 4]},
    )
    image = left.imshow(values, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
    rows, cols = np.nonzero(~kept.to_numpy())
    left.scatter(cols, rows, marker="x", s=14, color="0.15", linewidths=0.8, label="pruned")
    left.set_yticks(range(len(modules)), [_short(m) for m in modules], fontsize=7)
    left.set_xticks(range(len(steps)), [str(s) for s in steps], fontsize=7, rotation=90 if len(steps) > 12 else 0)
    left.set_xlabel("training step of the selection round")
    left.set_ylabel("gated LoRA module (block.type)")
    left.set_title("importance per round (x = pruned)")

    final_step = steps[-1]
    last = history[history["step"] == final_step]
    types = sorted({module_position(m)[1] for m in modules}, key=_type_rank)
    blocks = sorted({module_position(m)[0] for m in modules})
    grid = np.full((len(blocks), len(types)), np.nan)
    chosen = np.zeros_like(grid, dtype=bool)
    for name, value, keep in zip(last["module"], last["importance"], last["kept"]):
        block, kind = module_position(name)
        grid[blocks.index(block), types.index(kind)] = value
        chosen[blocks.index(block), types.index(kind)] = bool(keep)
    right.imshow(grid, aspect="auto", cmap="RdBu_r", norm=norm, interpolation="nearest")
    r, c = np.nonzero(chosen)
    right.scatter(c, r, marker="o", s=60, facecolors="none", edgecolors="black", linewidths=1.4, label="kept")
    right.set_xticks(range(len(types)), types)
    right.set_yticks(range(len(blocks)), [f"block {b}" if b >= 0 else "other" for b in blocks])
    right.set_xlabel("module type")
    right.set_ylabel("encoder block")
    right.set_title(f"final selection at step {final_step}: {int(chosen.sum())} of {len(modules)} kept (o)")
    fig.colorbar(image, ax=[left, right], shrink=0.8, label="importance (loss increase if removed)")
    fig.suptitle(title or "Gated DSIC: module importance and selection")
    return fig


def _type_rank(kind: str) -> int:
    return MODULE_TYPES.index(kind) if kind in MODULE_TYPES else len(MODULE_TYPES)


def _short(name: str) -> str:
    block, kind = module_position(name)
    return f"{block}.{kind}" if block >= 0 else name
