"""Masked-reconstruction fine-tuning and per-time-step anomaly scores on plain arrays.

Score of a time step = squared reconstruction error in its window's RevIN space
(scale-free, so channels of any unit average fairly), averaged over every
overlapping window that covers it and over channels. Any series length works: a
series shorter than the context is one left-padded window.
"""

from __future__ import annotations

import numpy as np
import torch

from trace_forecast.backbone.moment import MomentBackbone
from trace_forecast.engine import TrainSettings, fit_network
from trace_forecast.engine.windows import make_window_sets, steps_per_run
from trace_forecast.engine.trainer import FitResult, resolve_accelerator
from trace_forecast.engine.windows import left_pad
from trace_forecast.network import NetworkSpec, TraceNetwork, build_network
from trace_forecast.params import parameter_report


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
    spec.total_steps = steps_per_run(len(train_ds), settings.batch_size, settings.max_epochs)
    network = build_network(backbone, spec, seed=settings.random_state)
    return fit_network(network, train_ds, val_ds if len(val_ds) else None, settings)


def window_starts(n: int, length: int, stride: int) -> list[int]:
    """Start positions of windows of ``length`` covering ``[0, n)`` (the last one ends at n)."""
    if n <= length:
        return [0]
    starts = list(range(0, n - length + 1, stride))
    if starts[-1] != n - length:
        starts.append(n - length)
    return starts


@torch.no_grad()
def reconstruction_scores(
    network: TraceNetwork, values: np.ndarray, stride: int, batch_size: int = 128, device: str = "cpu"
) -> np.ndarray:
    """Per-time-step scores ``[T]`` of a ``[T, C]`` array."""
    accelerator, _ = resolve_accelerator(device)
    dev = torch.device("cuda" if accelerator == "gpu" else "cpu")
    network = network.to(dev).eval()
    length = network.spec.context_length
    n, n_channels = values.shape
    total = np.zeros(n)
    count = np.zeros(n)
    starts = window_starts(n, length, stride)
    for c in range(n_channels):
        s = values[:, c].astype(np.float32)
        for b in range(0, len(starts), batch_size):
            chunk = starts[b : b + batch_size]
            pads = [left_pad(s[st : st + length], length) for st in chunk]
            x = torch.from_numpy(np.stack([p[0] for p in pads]))[:, None, :].to(dev)
            mask = torch.from_numpy(np.stack([p[1] for p in pads])).to(dev)
            enc = network.backbone.encode(x, mask)
            rec = network.backbone.head(enc.tokens)
            target = network.backbone.normalizer.normalize(x, enc.mean, enc.std)
            err = ((rec - target) ** 2)[:, 0].float().cpu().numpy()
            for row, st in zip(err, chunk, strict=True):
                observed = min(length, n - st)
                total[st : st + observed] += row[length - observed :]
                count[st : st + observed] += 1
    network.cpu()
    return total / np.maximum(count, 1)
