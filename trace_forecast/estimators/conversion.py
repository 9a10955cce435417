"""One fitted network, two sktime estimators: a fitted :class:`~trace_forecast.TraceForecaster`
becomes a :class:`~trace_forecast.TraceAnomalyDetector` and back, with no second fit.

Both estimators import this module and neither imports the other: each registers its class
here (:func:`register`), and the package ``trace_forecast.estimators`` imports both modules,
so both are registered before any conversion runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from trace_forecast.errors import DataError
from trace_forecast.estimators._common import fitted_state, shared_params

_CLASSES: dict[str, type] = {}


def register(role: str):
    """Class decorator: the estimator that plays ``role`` ("forecaster" or "detector")."""

    def decorate(cls: type) -> type:
        _CLASSES[role] = cls
        return cls

    return decorate


def to_detector(forecaster, X: pd.DataFrame | None = None, **params: Any):
    """A fitted detector scoring anomalies with ``forecaster``'s adapted network; its error
    scale and threshold are calibrated on ``X`` (default: the forecaster's history)."""
    detector_cls = _CLASSES["detector"]
    forecaster.check_is_fitted()
    X = forecaster._history if X is None else X
    if isinstance(X.index, pd.MultiIndex):
        raise DataError("to_detector calibrates on one (possibly multivariate) series; the forecaster was "
                        "fitted on a panel: pass one of its series as X")
    settings = {**shared_params(forecaster, detector_cls), "forecast_horizon": forecaster.network_.spec.horizon,
                **params}
    detector = detector_cls(**settings)
    detector._adopted__fit = fitted_state(forecaster, residuals=forecaster.residuals_)
    return detector.fit(X)


def to_forecaster(detector):
    """A fitted forecaster forecasting with ``detector``'s network (a ``multitask=True``
    detector's forecasting head), its history the data the detector was fitted on."""
    forecaster_cls = _CLASSES["forecaster"]
    detector.check_is_fitted()
    if getattr(detector.network_, "forecast_head", None) is None:
        raise ValueError(
            "this detector was fitted for anomaly scores only and has no forecasting head; fit it with "
            "multitask=True and forecast_horizon=H to forecast with it (or fit a TraceForecaster)"
        )
    forecaster = forecaster_cls(**shared_params(detector, forecaster_cls))
    forecaster._adopted__fit = fitted_state(detector, residuals=detector.forecast_residuals_)
    return forecaster.fit(detector._X_fit, fh=np.arange(1, detector.network_.spec.horizon + 1))
