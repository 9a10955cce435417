"""What both sktime estimators share: training settings from their parameters, the
fitted attributes a training run leaves behind, and how one estimator adopts another's
fitted network (one multi-task fit, two uses)."""

from __future__ import annotations

import copy
import dataclasses
import inspect
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:  # the engine (Lightning) loads when an estimator fits
    from trace_forecast.engine import TrainSettings
    from trace_forecast.engine.trainer import FitResult


def train_settings(est, **overrides) -> TrainSettings:
    """``TrainSettings`` from an estimator's parameters (``overrides`` win); with
    ``multitask=True`` the forecast loss gets its reconstruction term."""
    from trace_forecast.engine import DSICSettings, TrainSettings

    fields = dict(
        max_epochs=est.max_epochs,
        batch_size=est.batch_size,
        learning_rate=est.learning_rate,
        device=est.device,
        random_state=est.random_state,
        verbose=est.verbose,
        trainer_kwargs=dict(est.trainer_kwargs or {}),
        dsic=DSICSettings.from_params(vars(est)),
    )
    if getattr(est, "multitask", False):
        from trace_forecast.tasks.scoring import JOINT_MASKS

        fields.update(reconstruction_weight=est.reconstruction_weight, mask_scheme=JOINT_MASKS)
    else:
        fields.update(reconstruction_weight=0.0)
    fields.update(overrides)
    return TrainSettings(**fields)


def store_fit(est, result: FitResult) -> None:
    """Set ``network_``, the trainable-parameter counts, Gated DSIC's selection and losses."""
    from trace_forecast.selection import history_frame

    est.network_ = result.network
    est.trainable_parameters_ = dict(result.parameters)
    for key, value in result.parameters.items():
        setattr(est, f"{key}_", value)
    est.selected_modules_ = pd.DataFrame(result.selection, columns=["module", "kept", "importance", "gate"])
    est.selection_history_ = history_frame(result.selection_history, result.module_names)
    est.train_loss_ = list(result.train_loss)
    est.val_loss_ = list(result.val_loss)
    est.fit_seconds_ = result.fit_seconds
    start = result.head_start
    est.fit_choices_ = {
        "head_start": None if start is None else dataclasses.asdict(start),
        "kept": result.kept,
    }


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
