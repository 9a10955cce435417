"""Resource limits: a fit that cannot fit in memory is refused before allocating, with a
remedy; a CUDA out-of-memory error is retried once with half the batch, then fails clearly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import seasonal_series, tiny_forecaster

import trace_forecast.engine.memory as memory
from trace_forecast.backbone import load_backbone, moment_config
from trace_forecast.engine.module import TraceLightningModule
from trace_forecast.errors import MemoryRetryWarning, ResourceError


def _series() -> pd.Series:
    return seasonal_series(200)


_forecaster = tiny_forecaster


def test_estimate_grows_with_batch_and_matches_the_measured_scale():
    tiny = load_backbone().config
    small, large = (memory.estimate_training_bytes(tiny, 512, 96, b, 12) for b in (32, 64))
    assert large.activations == 2 * small.activations and large.parameters == small.parameters
    # MOMENT-large, batch 32: measured 6.8 GB peak on an H100 in bf16 (docs/benchmarks.md);
    # the float32 estimate must be of that order and not below it.
    estimate = memory.estimate_training_bytes(moment_config("large"), 512, 96, 32, 12).total / 1e9
    assert 6.8 <= estimate <= 4 * 6.8


def test_a_batch_that_cannot_fit_is_refused_before_allocating(tiny_backbone_dir, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda accelerator: 50 * 2**20)  # 50 MiB left
    with pytest.raises(ResourceError, match=r"batch_size=65536.*lower batch_size to at most \d+"):
        _forecaster(tiny_backbone_dir, batch_size=65536).fit(_series(), fh=[1, 2, 3])
    _forecaster(tiny_backbone_dir).fit(_series(), fh=[1, 2, 3])  # the same fit with batch 16 runs


def _out_of_memory_in_training(monkeypatch, failures: int) -> list[int]:
    """The first ``failures`` training runs die of CUDA OOM at their first step; returns
    the batch sizes seen."""
    original = TraceLightningModule.training_step
    seen: list[int] = []
    runs = {"failed": 0, "step": 0}

    def step(self, batch, batch_idx):
        if batch_idx == 0:
            seen.append(len(batch[0]))
        if batch_idx == 0 and runs["failed"] < failures:
            runs["failed"] += 1
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, batch, batch_idx)

    monkeypatch.setattr(TraceLightningModule, "training_step", step)
    return seen


def test_out_of_memory_retries_once_with_half_the_batch(tiny_backbone_dir, monkeypatch):
    expected = _forecaster(tiny_backbone_dir, batch_size=8).fit(_series(), fh=[1, 2, 3]).predict()
    seen = _out_of_memory_in_training(monkeypatch, failures=1)
    with pytest.warns(MemoryRetryWarning, match="retrying once with batch_size=8"):
        f = _forecaster(tiny_backbone_dir, batch_size=16).fit(_series(), fh=[1, 2, 3])
    assert seen == [16, 8]
    # Restored before the retry: the result is the fit that batch 8 gives from the start.
    np.testing.assert_allclose(f.predict().to_numpy(), expected.to_numpy(), rtol=1e-6)


def test_out_of_memory_twice_is_a_clear_error(tiny_backbone_dir, monkeypatch):
    _out_of_memory_in_training(monkeypatch, failures=2)
    f = _forecaster(tiny_backbone_dir, batch_size=16)
    with pytest.warns(MemoryRetryWarning), pytest.raises(ResourceError, match="batch_size=16 and again at 8"):
        f.fit(_series(), fh=[1, 2, 3])
    assert not f.is_fitted
