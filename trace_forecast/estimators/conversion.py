"""One fitted network, two sktime estimators: a fitted :class:`~trace_forecast.TraceForecaster`
becomes a :class:`~trace_forecast.TraceAnomalyDetector` and back, with no second fit.

Both estimators import this module and neither imports the other: each registers its class
here (:func:`register`), and the package ``trace_forecast.estimators`` imports both modules,
so both are registered before any conversion runs.
"""

from __future__ import annotations

import inspect
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


def save_adapters(est, folder, residuals=None):
    """Write ``est``'s fitted adapters, head and ``residuals`` to an adapter folder
    (:mod:`trace_forecast.tasks.adapter_folder`)."""
    from trace_forecast.tasks.adapter_folder import fit_report, save_adapter_folder

    est.check_is_fitted()
    role = next(r for r, c in _CLASSES.items() if isinstance(est, c))
    return save_adapter_folder(folder, est.network_, est.backbone, role, est.get_params(deep=False), fit_report(est),
                               residuals)


def from_adapters(cls, folder, params: dict[str, Any]):
    """An unfitted ``cls`` whose next ``fit`` adopts the adapters in ``folder`` (no
    training): the folder's parameters, ``params`` overriding them, and ``context_length``
    the one the adapters were trained with."""
    from trace_forecast.errors import ParameterError
    from trace_forecast.tasks.adapter_folder import read_adapter_folder

    loaded = read_adapter_folder(folder, params.get("backbone", "as saved"))
    spec = loaded.network.spec
    if cls is _CLASSES["forecaster"] and spec.task != "forecast":
        raise ValueError(f"{folder} holds an anomaly-scoring network without a forecasting head: load it with "
                         "TraceAnomalyDetector.load_adapters")
    if params.get("context_length", spec.context_length) != spec.context_length:
        raise ParameterError(f"the adapters in {folder} read a context of {spec.context_length} steps; "
                             f"context_length={params['context_length']} does not fit them")
    settings = {**loaded.params_for(cls), "context_length": spec.context_length}
    if "forecast_horizon" in inspect.signature(cls.__init__).parameters and spec.task == "forecast":
        settings["forecast_horizon"] = spec.horizon
    est = cls(**{**settings, **params})
    est._adopted__fit = loaded.fitted_state()
    return est
