"""The three figures: written to files, axes labelled, something drawn."""

from __future__ import annotations

import pandas as pd
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")

from helpers import seasonal_series, tiny_forecaster  # noqa: E402

from trace_forecast import TraceAnomalyDetector, TraceForecaster  # noqa: E402
from trace_forecast.errors import DataError  # noqa: E402
from trace_forecast.plotting import (  # noqa: E402
    module_position,
    plot_adapter_selection,
    plot_anomaly_scores,
    plot_forecast,
)


def _series(n: int = 200) -> pd.Series:
    return seasonal_series(n, period_index=True, name="y")


@pytest.fixture(scope="module")
def forecaster(tiny_backbone_dir) -> TraceForecaster:
    return tiny_forecaster(tiny_backbone_dir, max_epochs=2).fit(_series(), fh=range(1, 13))


def _check(fig, path, min_artists: int = 1) -> None:
    fig.savefig(path)
    assert path.stat().st_size > 5_000  # a real PNG, not an empty canvas
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    for ax in axes:  # panels stacked on a shared time axis label it once, at the bottom
        assert ax.get_ylabel() and (ax.get_xlabel() or ax.get_shared_x_axes().get_siblings(ax) != [ax])
    assert axes[-1].get_xlabel()
    drawn = sum(len(ax.lines) + len(ax.collections) + len(ax.images) for ax in axes)
    assert drawn >= min_artists
    matplotlib.pyplot.close(fig)


def test_plot_forecast_with_intervals(forecaster, tmp_path):
    pred = forecaster.predict()
    intervals = forecaster.predict_interval(coverage=[0.5, 0.9])
    fig = plot_forecast(_series(), pred, intervals, history=48)
    _check(fig, tmp_path / "forecast.png", min_artists=4)  # history, forecast, two bands
    ax = fig.axes[0]
    assert len(ax.collections) == 2
    assert ax.get_legend() is not None


def test_plot_anomaly_scores_from_a_detector(tiny_backbone_dir, tmp_path):
    y = _series(400)
    detector = TraceAnomalyDetector(backbone=str(tiny_backbone_dir), context_length=64, max_epochs=1,
                                    batch_size=16, random_state=0, dsic_interval=2, dsic_draws=2).fit(y.iloc[:200])
    x = y.copy()
    x.iloc[300:305] += 20
    fig = plot_anomaly_scores(x, detector=detector)
    _check(fig, tmp_path / "anomaly.png", min_artists=3)
    score_axis = fig.axes[1]
    assert any(line.get_linestyle() == "--" for line in score_axis.lines), "the threshold is drawn"


def test_plot_anomaly_scores_checks_lengths():
    with pytest.raises(DataError, match="scores have 3 values"):
        plot_anomaly_scores(_series(10), scores=[1.0, 2.0, 3.0])


def test_plot_adapter_selection_from_sktime_and_frame(forecaster, tmp_path):
    fig = plot_adapter_selection(forecaster)
    _check(fig, tmp_path / "selection.png", min_artists=3)
    heatmap = fig.axes[0]
    n_modules = forecaster.selected_modules_.shape[0]
    assert len(heatmap.get_yticklabels()) == n_modules
    assert len(heatmap.get_xticklabels()) == forecaster.selection_history_["step"].nunique()
    again = plot_adapter_selection(forecaster.selection_history_)
    assert len(again.axes) == len(fig.axes)
    matplotlib.pyplot.close(again)


def test_plot_adapter_selection_without_gated_dsic_is_a_clear_error(tiny_backbone_dir):
    f = TraceForecaster(backbone=str(tiny_backbone_dir), context_length=64, adapter="lora", max_epochs=1,
                        random_state=0).fit(_series(), fh=[1])
    with pytest.raises(DataError, match="no Gated DSIC selection rounds"):
        plot_adapter_selection(f)
    with pytest.raises(DataError, match="has no Gated DSIC selection history"):
        plot_adapter_selection(object())


def test_module_position():
    assert module_position("block.2.layer.0.SelfAttention.q") == (2, "q")
    assert module_position("encoder.block.11.layer.1.DenseReluDense.wi_0") == (11, "wi_0")
    assert module_position("head.linear") == (-1, "linear")
