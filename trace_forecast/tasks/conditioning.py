"""Numerical conditioning of the values the network sees.

RevIN standardises each window by ``std + 1e-5`` (as MOMENT does): an absolute floor, so a
series whose values are around 1e-6 is flattened by it (the airline data times 1e-6 forecast
2 % off zero-shot, times 1e-12 forty times off). And float32 keeps about 7 digits, so
``1e9 + sin(t)`` is a constant in float32. The network is otherwise invariant to a positive
scale and a shift of its input, so each series is brought into range before it is cast to
float32, and the forecasts are brought back:

- multiplied by a power of two (exact in floating point) when its standard deviation is
  below ``2**-6`` (where RevIN's floor reaches 0.06 % of the series' spread, and more in
  its quieter windows), so that it lies in ``[1, 2)``;
- less its median when that median is more than ``4096`` standard deviations from zero.

Series already in range pass unchanged, bit for bit, and so do series whose spread is
within ``1e-12`` of their level: float rounding of a constant, which scaling up would turn
into a signal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SMALL_SCALE = 2.0**-6   # a spread below this is scaled up: RevIN's floor is 1e-5, 0.06 % of 2**-6
LARGE_OFFSET = 2.0**12  # a median more standard deviations from zero than this is subtracted
ROUNDING = 1e-12        # a spread within this share of the level is float rounding: the series is constant


@dataclass(frozen=True)
class Conditioning:
    """``(x - shift) * scale``, the values a series is given to the network as."""

    shift: float = 0.0
    scale: float = 1.0

    @classmethod
    def of(cls, values: np.ndarray) -> Conditioning:
        """The conditioning of a series (its observed values)."""
        observed = np.asarray(values, dtype=np.float64)
        observed = observed[np.isfinite(observed)]
        std = float(observed.std()) if len(observed) > 1 else 0.0
        median = float(np.median(observed)) if len(observed) else 0.0
        if std <= ROUNDING * abs(median):  # constant (empty, or float rounding): as is, RevIN maps it to zeros
            return cls()
        scale = 2.0 ** int(np.ceil(-np.log2(std))) if std < SMALL_SCALE else 1.0
        return cls(median if abs(median) > LARGE_OFFSET * std else 0.0, scale)

    @property
    def identity(self) -> bool:
        return self.shift == 0.0 and self.scale == 1.0

    def apply(self, values: np.ndarray) -> np.ndarray:
        """``values`` conditioned, as float32 (unchanged values cast as they were before)."""
        if self.identity:
            return np.asarray(values).astype(np.float32)
        return ((np.asarray(values, dtype=np.float64) - self.shift) * self.scale).astype(np.float32)


def conditioned(series: list[np.ndarray]) -> tuple[list[np.ndarray], list[Conditioning]]:
    """Each series conditioned (float32), and its conditioning."""
    conditions = [Conditioning.of(s) for s in series]
    return [c.apply(s) for c, s in zip(conditions, series, strict=True)], conditions


def restored(values: np.ndarray, conditions: list[Conditioning], power: int = 1) -> np.ndarray:
    """Outputs ``[n_series, ...]`` in conditioned units back in each series' own units:
    values (``power=1``: shifted back too) or variances (``power=2``: scaled only).
    Unchanged, and of the same type, where every conditioning is the identity."""
    if all(c.identity for c in conditions):
        return values
    scale = np.array([c.scale for c in conditions], dtype=np.float64).reshape(-1, *[1] * (values.ndim - 1))
    out = np.asarray(values, dtype=np.float64) / scale**power
    if power == 1:
        out = out + np.array([c.shift for c in conditions], dtype=np.float64).reshape(scale.shape)
    return out


def channel_conditions(arrays: list[np.ndarray]) -> list[Conditioning]:
    """One conditioning per channel of ``[T, C]`` arrays, from all of them together (the
    training series of a detector; its scored data are conditioned the same way)."""
    return [Conditioning.of(np.concatenate([a[:, c] for a in arrays])) for c in range(arrays[0].shape[1])]


def conditioned_channels(values: np.ndarray, conditions: list[Conditioning] | None) -> np.ndarray:
    """``values [T, C]`` as float32, each channel conditioned (``None``: cast only)."""
    if conditions is None or all(c.identity for c in conditions):
        return np.asarray(values).astype(np.float32)
    return np.stack([c.apply(values[:, i]) for i, c in enumerate(conditions)], axis=1)
