"""Anomaly detection shared by the sktime detector and the Darts scorer: fine-tune on
normal data with the score's own masks, then standardise the errors against the
training errors (one code path, so both front ends give identical scores)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from trace_forecast.backbone.moment import MomentBackbone
from trace_forecast.engine import TrainSettings
from trace_forecast.engine.trainer import FitResult
from trace_forecast.network import NetworkSpec, TraceNetwork
from trace_forecast.tasks.reconstruct import fit_reconstruction
from trace_forecast.tasks.scoring import SCORES, ErrorScale, anomaly_scores, channel_errors


@dataclass(frozen=True)
class ScoreSettings:
    """How a fitted network scores: the ``score`` variant, window stride and smoothing."""

    score: str
    stride: int
    score_window: int
    device: str = "cpu"

    @classmethod
    def from_params(cls, score: str, stride: int | None, score_window: int, context_length: int,
                    device: str) -> ScoreSettings:
        return cls(score, stride if stride is not None else max(1, context_length // 8), score_window, device)

    def errors(self, network: TraceNetwork, values: np.ndarray) -> np.ndarray:
        """Hidden-step errors ``[T, C]`` of a ``[T, C]`` array."""
        return channel_errors(network, values, self.score, self.stride, device=self.device)

    def scores(self, network: TraceNetwork, scale: ErrorScale, values: np.ndarray,
               component_wise: bool = False) -> np.ndarray:
        """Anomaly scores of a ``[T, C]`` array: ``[T]``, or ``[T, C]`` if ``component_wise``."""
        return anomaly_scores(scale.standardise(self.errors(network, values)), self.score_window, component_wise)


def calibrate(network: TraceNetwork, series: list[np.ndarray], scoring: ScoreSettings
              ) -> tuple[ErrorScale, np.ndarray, list[np.ndarray]]:
    """The per-channel error scale of ``network``'s errors on ``series`` (``[T, C]``
    arrays): ``(scale, training scores (concatenated, channels aggregated), raw errors
    [T, C] per series)``. Any fitted network scores: a detector's, or a forecaster's
    adapted encoder with the pretrained reconstruction head."""
    errors = [scoring.errors(network, s) for s in series]
    scale = ErrorScale.fit(errors, network.spec.context_length)
    train_scores = [anomaly_scores(scale.standardise(e), scoring.score_window) for e in errors]
    return scale, np.concatenate(train_scores), errors


def fit_anomaly_model(
    series: list[np.ndarray],
    backbone: MomentBackbone,
    spec: NetworkSpec,
    settings: TrainSettings,
    scoring: ScoreSettings,
    validation_fraction: float,
    max_windows: int | None,
    window_stride: int,
) -> tuple[FitResult, ErrorScale, np.ndarray, list[np.ndarray]]:
    """Fine-tune masked reconstruction on ``series`` (``[T, C]`` arrays) with masks drawn
    from the score's family and only hidden steps in the loss (what the score measures),
    then :func:`calibrate`. Returns the fit and the calibration."""
    channels = [s[:, c] for s in series for c in range(s.shape[1])]
    masked = scoring.score != "unmasked"
    settings = replace(settings, mask_scheme=SCORES[scoring.score] if masked else None,
                       visible_weight=0.0 if masked else 1.0)
    result = fit_reconstruction(channels, backbone, spec, settings, validation_fraction, max_windows,
                                window_stride, min_context=1)
    return (result, *calibrate(result.network, series, scoring))
