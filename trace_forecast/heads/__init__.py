"""Forecasting heads: TRACE's reconstruction-based head and MOMENT's linear probe."""

from trace_forecast.heads.linear import LinearProbingHead
from trace_forecast.heads.reconstruction import (
    TEMPORAL_MAPS,
    ReconstructionForecastHead,
    extend_with_hidden_future,
    resolve_future_patches,
)

__all__ = [
    "TEMPORAL_MAPS",
    "LinearProbingHead",
    "ReconstructionForecastHead",
    "extend_with_hidden_future",
    "resolve_future_patches",
]
