"""What both sktime estimators share: training settings from their parameters, and the
fitted attributes a training run leaves behind."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:  # the engine (Lightning) loads when an estimator fits
    from trace_forecast.engine import TrainSettings
    from trace_forecast.engine.trainer import FitResult


def train_settings(est, **overrides) -> TrainSettings:
    """``TrainSettings`` from an estimator's parameters (``overrides`` win)."""
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
