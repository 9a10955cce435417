"""Darts integration: :class:`TraceModel` (forecasting) and :class:`TraceAnomalyScorer` (darts.ad)."""

from trace_forecast.darts.model import TraceModel
from trace_forecast.darts.scorer import TraceAnomalyScorer

__all__ = ["TraceAnomalyScorer", "TraceModel"]
