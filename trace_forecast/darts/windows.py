"""Darts training samples capped per epoch, as ``max_windows`` caps the engine's windows."""

from __future__ import annotations

import math

import numpy as np
from darts.utils.data.torch_datasets.training_dataset import TorchTrainingDataset


def samples_for_windows(max_windows: int | None, channels: int) -> int | None:
    """Darts samples holding about ``max_windows`` univariate windows (one per channel)."""
    return None if max_windows is None else max(1, math.ceil(max_windows / max(channels, 1)))


class SubsampledTrainingDataset(TorchTrainingDataset):
    """A fixed, reproducible random subset of another training dataset (``pool``).

    The pool stays reachable: the closed-form head start reads more windows from it
    than one epoch trains on, as the engine does.
    """

    def __init__(self, pool: TorchTrainingDataset, size: int, seed: int) -> None:
        super().__init__()
        self.pool = pool
        rng = np.random.default_rng(seed)
        self.indices = np.sort(rng.choice(len(pool), size=min(size, len(pool)), replace=False))

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return self.pool[int(self.indices[index])]
