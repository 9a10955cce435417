"""Pretraining windows: each one a pure function of ``(seed, index)``, so a stream of them
can stop anywhere and resume at the same window on any machine.

:class:`PretrainWindows` cuts window ``i`` (a context and the mask of the patches it
hides); :class:`WindowStream` serves them in index order from a start position, which is
how a resumed pretraining run continues the data stream where its checkpoint left it.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from trace_forecast.engine.windows import left_pad
from trace_forecast.network import random_patch_mask
from trace_forecast.pretraining.mixture import SourceMixture

Window = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
SHORT_SHARE = 0.3  # share of shortened (left-padded) contexts: v3's recipe and the held-out checks'


class PretrainWindows(Dataset):
    """Random windows with their pretraining masks; index-seeded, so reproducible.

    Series come from ``mixture`` (a :class:`SourceMixture` of weighted sources) when given,
    else from ``series`` and ``real``. A share ``tail_share`` of windows hides its last 1 to
    ``max_tail_patches`` patches (extending a series, what the forecasting head reads); the
    others hide a ratio of their observed patches drawn from ``mask_ratio`` (a number, or a
    ``(low, high)`` range). A share ``short_share`` of windows is shortened to a length drawn
    uniformly between 8 patches (or the series' length) and the full context (at most
    ``short_max`` steps, if given), and left-padded; the others take the full context where
    the series has it. ``real`` series, if given, are
    drawn with probability ``real_share``.
    """

    def __init__(self, series: list[np.ndarray], n_windows: int, seq_len: int, patch_len: int,
                 mask_ratio: float | tuple[float, float] = 0.3, tail_share: float = 0.3, seed: int = 0,
                 max_tail_patches: int = 12, real: list[np.ndarray] | None = None,
                 real_share: float = 0.0, mixture: SourceMixture | None = None,
                 short_share: float = SHORT_SHARE, short_max: int | None = None) -> None:
        self.series = series
        self.mixture = mixture
        self.n_windows = n_windows
        self.seq_len = seq_len
        self.patch_len = patch_len
        self.mask_ratio = mask_ratio
        self.tail_share = tail_share
        self.seed = seed
        self.max_tail_patches = max_tail_patches
        self.real = real or []
        self.real_share = real_share if self.real else 0.0
        self.short_share = short_share
        self.short_max = short_max

    def __len__(self) -> int:
        return self.n_windows

    def __getitem__(self, idx: int) -> Window:
        rng = np.random.default_rng((self.seed, idx))
        if self.mixture is not None:
            s = self.mixture.draw(rng)[1]
        elif self.real_share > 0 and rng.random() < self.real_share:
            s = self.real[rng.integers(len(self.real))]
        else:
            s = self.series[rng.integers(len(self.series))]
        min_len = min(len(s), 8 * self.patch_len)
        end = int(rng.integers(min_len, len(s) + 1))
        full = min(end, self.seq_len)
        # Mostly full contexts (as MOMENT sees), sometimes short ones (left-padded).
        if rng.random() < 1.0 - self.short_share:
            length = full
        else:
            longest = full if self.short_max is None else min(full, self.short_max)
            length = int(rng.integers(min(min_len, end, longest), longest + 1))
        x, input_mask = left_pad(s[end - length : end], self.seq_len)
        x_t, m_t = torch.from_numpy(x)[None, :], torch.from_numpy(input_mask)
        observed_patches = int(m_t.reshape(-1, self.patch_len).all(-1).sum())
        if rng.random() < self.tail_share and observed_patches >= 4:
            k = int(rng.integers(1, min(self.max_tail_patches, observed_patches // 2) + 1))
            mask = torch.ones(self.seq_len)
            mask[-k * self.patch_len :] = 0
        else:
            g = torch.Generator().manual_seed(int(rng.integers(2**31)))
            ratio = self.mask_ratio if np.isscalar(self.mask_ratio) else float(rng.uniform(*self.mask_ratio))
            mask = random_patch_mask(m_t[None], self.patch_len, ratio, g)[0]
        return x_t, m_t, mask


class WindowStream(IterableDataset):
    """Windows ``start, start + 1, ...`` of ``windows`` (endless unless ``stop`` is given).

    The position is the only state of the stream: a run that has trained on ``n`` windows
    resumes with ``start = n`` and sees exactly the windows an uninterrupted run would have.
    With several data-loader workers, worker ``w`` of ``W`` builds batches ``w, w + W, ...``
    (the loader takes batches from its workers in turn, so the order is kept).
    """

    def __init__(self, windows: PretrainWindows, batch_size: int, start: int = 0, stop: int | None = None) -> None:
        self.windows = windows
        self.batch_size = batch_size
        self.start = int(start)
        self.stop = stop

    def __iter__(self) -> Iterator[Window]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        batch = worker
        while True:
            first = self.start + batch * self.batch_size
            for idx in range(first, first + self.batch_size):
                if self.stop is not None and idx >= self.stop:
                    return
                yield self.windows[idx]
            batch += workers
