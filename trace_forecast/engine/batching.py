"""Batch size of forward-only passes: prediction, interval residuals, anomaly scores and
the closed-form head start.

On a CPU, 256 windows of the embedded backbone (256 x 64 tokens x 128 channels, and
twice that in the feed-forward layers) outgrow the caches between one matrix product
and the next; 64 windows keep them in cache (``benchmarks/cpu_speed.py`` measures whole
fits and predictions before and after; ``docs/scaling.md``). On a GPU, larger batches
keep the device busy.
"""

from __future__ import annotations

import torch

CPU_INFERENCE_BATCH = 64
GPU_INFERENCE_BATCH = 256


def inference_batch_size(device: torch.device | str) -> int:
    """Windows per forward-only batch on ``device``."""
    return GPU_INFERENCE_BATCH if torch.device(device).type == "cuda" else CPU_INFERENCE_BATCH
