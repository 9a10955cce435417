"""Masked-reconstruction fine-tuning on plain arrays (the scores: :mod:`.scoring`)."""

from __future__ import annotations

import numpy as np

from trace_forecast.backbone.moment import MomentBackbone
from trace_forecast.engine import TrainSettings, fit_network
from trace_forecast.engine.memory import check_training_memory
from trace_forecast.engine.trainer import FitResult
from trace_forecast.engine.windows import make_window_sets, steps_per_run
from trace_forecast.network import NetworkSpec, build_network
from trace_forecast.parameter_count import parameter_report


def fit_reconstruction(
    series: list[np.ndarray],
    backbone: MomentBackbone,
    spec: NetworkSpec,
    settings: TrainSettings,
    validation_fraction: float = 0.2,
    max_windows: int | None = None,
    stride: int = 1,
    min_context: int = 8,
) -> FitResult:
    """Fine-tune masked reconstruction on univariate ``series``; ``adapter="none"`` is zero-shot."""
    if spec.adapter == "none":
        network = build_network(backbone, spec, seed=settings.random_state)
        for p in network.parameters():
            p.requires_grad_(False)
        return FitResult(network.eval(), [], [], [], parameter_report(network), 0.0, 0)
    # Window ends: from min_context to the end of each series, every `stride` steps.
    sets = make_window_sets(series, spec.context_length, 0, min_context, validation_fraction, stride,
                            max_windows, settings.random_state or 0)
    train_ds, val_ds = sets.train, sets.val
    check_training_memory(backbone.config, spec.context_length, 0, settings.batch_size, settings.accelerator()[0])
    spec.total_steps = steps_per_run(len(train_ds), settings.batch_size, settings.max_epochs)
    network = build_network(backbone, spec, seed=settings.random_state)
    return fit_network(network, train_ds, val_ds if len(val_ds) else None, settings)
