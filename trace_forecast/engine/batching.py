"""Batch size of forward-only passes: prediction, interval residuals, anomaly scores and
the closed-form head start.

On a CPU, 256 windows of the embedded backbone (256 x 64 tokens x 128 channels, and
twice that in the feed-forward layers) outgrow the caches between one matrix product
and the next; 64 windows keep them in cache and ran the frozen forward pass 20-25 %
faster on 2 AMD EPYC cores, AVX-512 or restricted to AVX2 (0.67-0.70 s per 1,024
windows against 0.83-0.92 s; ``benchmarks/cpu_speed.py`` measures the effect on whole
fits and predictions). On a GPU, larger batches keep the device busy.
"""

from __future__ import annotations

import torch

CPU_INFERENCE_BATCH = 64
GPU_INFERENCE_BATCH = 256


def inference_batch_size(device: torch.device | str) -> int:
    """Windows per forward-only batch on ``device``."""
    return GPU_INFERENCE_BATCH if torch.device(device).type == "cuda" else CPU_INFERENCE_BATCH
