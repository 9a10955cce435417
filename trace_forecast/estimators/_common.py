"""What both sktime estimators share: the fitted attributes a training run leaves behind,
and how one estimator adopts another's fitted network (one multi-task fit, two uses)."""

from __future__ import annotations

import copy
import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the engine (Lightning) loads when an estimator fits
    from trace_forecast.engine.trainer import FitResult


def store_fit(est, result: FitResult) -> None:
    """Set ``network_``, the trainable-parameter counts, Gated DSIC's selection, losses and
    the fit's choices (:func:`trace_forecast.tasks.setup.fitted_attributes`)."""
    from trace_forecast.tasks.setup import fitted_attributes

    for name, value in fitted_attributes(result).items():
        setattr(est, name, value)


FITTED_ATTRIBUTES = ("network_", "trainable_parameters_", "selected_modules_", "selection_history_", "train_loss_",
                     "val_loss_", "fit_seconds_", "fit_choices_")


def fitted_state(est, residuals=None) -> dict[str, Any]:
    """A copy of what ``est``'s training produced (see :func:`store_fit`), for another
    estimator to adopt; ``residuals`` are the forecasting head's calibration windows."""
    state = {name: copy.deepcopy(getattr(est, name)) for name in FITTED_ATTRIBUTES}
    state.update({f"{k}_": v for k, v in est.trainable_parameters_.items()})
    state["residuals"] = None if residuals is None else residuals.copy()
    return state


def adopt_fit(est, state: dict[str, Any]) -> None:
    """Set the fitted attributes of :func:`fitted_state` on ``est`` (no training)."""
    for name, value in state.items():
        if name != "residuals":
            setattr(est, name, value)


def shared_params(est, cls) -> dict[str, Any]:
    """``est``'s parameters that ``cls`` also takes (same name, same meaning)."""
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return {k: v for k, v in est.get_params(deep=False).items() if k in accepted}
