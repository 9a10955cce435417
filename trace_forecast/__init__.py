"""trace_forecast: TRACE parameter-efficient fine-tuning of time-series foundation models.

``TraceForecaster`` and ``TraceAnomalyDetector`` are sktime estimators; the Darts model
lives in ``trace_forecast.darts``. The core (backbone, adapters, Gated DSIC, heads,
training engine) knows nothing of either front end.
"""

import logging

from trace_forecast.version import __version__

# Library convention: the application decides where log records go (Gated DSIC logs one
# INFO line per selection round under the ``trace_forecast`` logger).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = ["TraceAnomalyDetector", "TraceForecaster", "__version__"]


def __getattr__(name: str):
    # Lazy: importing the package must not import torch/sktime until needed.
    if name == "TraceForecaster":
        from trace_forecast.estimators.forecaster import TraceForecaster

        return TraceForecaster
    if name == "TraceAnomalyDetector":
        from trace_forecast.estimators.detector import TraceAnomalyDetector

        return TraceAnomalyDetector
    raise AttributeError(f"module 'trace_forecast' has no attribute {name!r}")
