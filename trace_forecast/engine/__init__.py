"""The training engine: windows, the LightningModule, callbacks and ``fit_network``."""

from trace_forecast.engine.trainer import (
    DSICSettings,
    FitResult,
    TrainSettings,
    fit_network,
)
from trace_forecast.engine.windows import WindowDataset, plan_windows, subsample

__all__ = ["DSICSettings", "FitResult", "TrainSettings", "WindowDataset", "fit_network", "plan_windows", "subsample"]
