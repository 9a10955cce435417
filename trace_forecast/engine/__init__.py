"""The training engine: windows, the LightningModule, callbacks and ``fit_network``."""

from trace_forecast.engine.settings import DSICSettings, TrainSettings
from trace_forecast.engine.trainer import FitResult, fit_network
from trace_forecast.engine.windows import WindowDataset, plan_windows, subsample

__all__ = ["DSICSettings", "FitResult", "TrainSettings", "WindowDataset", "fit_network", "plan_windows", "subsample"]
