"""sktime estimators: thin adapters from pandas to the core's task API. Importing the
package registers both estimators for conversion into each other
(:mod:`~trace_forecast.estimators.conversion`)."""

from trace_forecast.estimators.detector import TraceAnomalyDetector
from trace_forecast.estimators.forecaster import TraceForecaster

__all__ = ["TraceAnomalyDetector", "TraceForecaster"]
