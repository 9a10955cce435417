"""Draw pretraining series from a weighted mixture of sources, at several resolutions.

A :class:`SourceMixture` holds named groups of series (the real sources of
:mod:`trace_forecast.pretraining.corpus` and the synthetic generator) with a mixing weight each.
A draw picks a group by weight, then a series within the group with probability
proportional to its length (a long series holds more distinct windows than a short one).

Resolutions: with probability ``coarse_share``, a series long enough for it is averaged
over ``f`` consecutive steps, ``f`` drawn from ``coarse_factors`` (:data:`COARSE_FACTORS` by
default) that leave at
least ``min_coarse_length`` values, so that daily, weekly and yearly cycles of fast series
fit in one 512-step context (an hourly series averaged by 24 shows a year in 365 steps).
Only a random stretch of ``chunk`` coarse steps is aggregated, so a draw costs the same
whatever the series' length.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COARSE_FACTORS = (2, 4, 12, 24)


@dataclass
class SourceMixture:
    """Named groups of series with mixing weights (normalised on construction)."""

    groups: dict[str, list[np.ndarray]]
    weights: dict[str, float]
    coarse_share: float = 0.0
    coarse_factors: tuple[int, ...] = COARSE_FACTORS
    min_coarse_length: int = 640
    chunk: int = 1024

    def __post_init__(self) -> None:
        self.groups = {k: v for k, v in self.groups.items() if v and self.weights.get(k, 0) > 0}
        if not self.groups:
            raise ValueError("a SourceMixture needs at least one non-empty group with a positive weight")
        self.names = list(self.groups)
        w = np.array([self.weights[n] for n in self.names], dtype=float)
        self.probabilities = w / w.sum()
        self._cumulative = {n: np.cumsum([len(s) for s in g]) for n, g in self.groups.items()}

    def draw(self, rng: np.random.Generator) -> tuple[str, np.ndarray]:
        """``(source name, series)``: a whole series or a coarse-grained stretch of one."""
        name = self.names[int(rng.choice(len(self.names), p=self.probabilities))]
        cum = self._cumulative[name]
        series = self.groups[name][int(np.searchsorted(cum, rng.integers(cum[-1]), side="right"))]
        if self.coarse_share > 0 and rng.random() < self.coarse_share:
            factors = [f for f in self.coarse_factors if len(series) // f >= self.min_coarse_length]
            if factors:
                series = coarse_stretch(series, int(rng.choice(factors)), self.chunk, rng)
        return name, series

    def share(self) -> dict[str, float]:
        """Each group's probability of being drawn."""
        return dict(zip(self.names, self.probabilities.tolist(), strict=True))


def coarse_stretch(series: np.ndarray, factor: int, chunk: int, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of ``series`` averaged over blocks of ``factor`` steps (at most
    ``chunk`` blocks)."""
    blocks = min(len(series) // factor, chunk)
    start = int(rng.integers(0, len(series) - blocks * factor + 1))
    return series[start : start + blocks * factor].reshape(blocks, factor).mean(axis=1).astype(np.float32)
