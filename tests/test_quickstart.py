"""The README's main job runs offline on the packaged ETTh1 with the default estimator."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_quickstart_beats_seasonal_naive(capsys):
    from trace_forecast import quickstart

    result = quickstart.main([])
    out = capsys.readouterr().out
    assert "TraceForecaster()" in out and "wall time" in out
    assert result["test_windows"] == 19495
    assert result["trace_mse"] < result["seasonal_naive_mse"]
    assert result["trace_mse"] < 0.40  # a regression guard, not a benchmark (docs/getting_started.md shows a run)
