"""Synthetic time series for pretraining and augmentation.

Two families, mixed at random:

- **KernelSynth-style Gaussian processes** (as in Chronos): a kernel built from a
  random sum/product of 1-3 base kernels (linear, RBF, periodic at many periods,
  rational quadratic, white noise), sampled exactly with a Cholesky factor.
- **Structural compositions**: trend + 1-3 seasonalities + AR(1)/random-walk noise, with
  optional level shifts, regime changes (seasonal amplitude or slope changes), spikes
  and dropouts.
- **Intermittent series** (optional, ``intermittent_share``): sparse non-negative demand,
  Bernoulli occurrences (possibly seasonal) with gamma-distributed sizes, as in retail
  and M5-like data.

Every series gets a random length, scale and offset; everything is reproducible
from a seed (``numpy.random.Generator``).
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

GP_MAX_LENGTH = 512
PERIODS = (4, 6, 7, 8, 12, 14, 24, 30, 48, 52, 60, 96, 144, 168, 336)


def _kernel(kind: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = t[:, None] - t[None, :]
    if kind == "linear":
        c = rng.uniform(-0.5, 1.5)
        return rng.uniform(0.1, 1.0) * (t[:, None] - c) * (t[None, :] - c)
    if kind == "rbf":
        ell = rng.choice([0.02, 0.05, 0.1, 0.3, 1.0])
        return np.exp(-0.5 * (d / ell) ** 2)
    if kind == "periodic":
        period = rng.choice(PERIODS) / len(t)
        ell = rng.choice([0.5, 1.0, 2.0])
        return np.exp(-2.0 * np.sin(np.pi * np.abs(d) / period) ** 2 / ell**2)
    if kind == "rq":
        ell, alpha = rng.choice([0.05, 0.1, 0.5]), rng.choice([0.1, 1.0, 10.0])
        return (1 + d**2 / (2 * alpha * ell**2)) ** (-alpha)
    if kind == "white":
        return rng.uniform(0.01, 0.2) * np.eye(len(t))
    raise ValueError(kind)


def kernel_synth(length: int, rng: np.random.Generator, max_kernels: int = 3) -> np.ndarray:
    """One GP sample with a random composite kernel (KernelSynth)."""
    t = np.linspace(0.0, 1.0, length)
    kinds = ["linear", "rbf", "periodic", "periodic", "rq", "white"]
    k = _kernel(rng.choice(kinds), t, rng)
    for _ in range(rng.integers(0, max_kernels)):
        other = _kernel(rng.choice(kinds), t, rng)
        k = k + other if rng.random() < 0.5 else k * other
    k = k + 1e-5 * np.eye(length)
    try:
        chol = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(k)
        chol = v * np.sqrt(np.clip(w, 0, None))
    return chol @ rng.standard_normal(length)


def composition(length: int, rng: np.random.Generator) -> np.ndarray:
    """Trend + seasonalities + noise, with random level shifts, regimes, spikes, dropouts."""
    t = np.arange(length, dtype=float)
    trend_kind = rng.choice(["none", "linear", "quadratic", "damped"])
    slope = rng.normal(0, 1.0 / length)
    trend = {
        "none": np.zeros(length),
        "linear": slope * t,
        "quadratic": slope * t + rng.normal(0, 1.0 / length**2) * t**2,
        "damped": slope * length * (1 - np.exp(-t / rng.uniform(0.2, 1.0) / length)),
    }[trend_kind] * rng.uniform(0.5, 3.0)
    season = np.zeros(length)
    for _ in range(rng.integers(1, 4)):
        period = float(rng.choice(PERIODS)) * rng.choice([1.0, 1.0, 1.0, rng.uniform(0.8, 1.2)])
        amp = rng.uniform(0.2, 1.5)
        phase = rng.uniform(0, 2 * np.pi)
        harmonics = rng.integers(1, 4)
        for h in range(1, harmonics + 1):
            season += amp / h * np.sin(2 * np.pi * h * t / period + h * phase)
    if rng.random() < 0.3:  # regime change: the seasonal amplitude changes at a random time
        cut = rng.integers(length // 4, 3 * length // 4)
        season[cut:] *= rng.uniform(0.3, 2.0)
    phi = rng.uniform(0.0, 0.95)
    eps = rng.normal(0, rng.uniform(0.05, 0.5), length)
    noise = np.zeros(length)
    for i in range(1, length):
        noise[i] = phi * noise[i - 1] + eps[i]
    if rng.random() < 0.2:
        noise = np.cumsum(eps) * rng.uniform(0.05, 0.3)
    y = trend + season + noise
    if rng.random() < 0.25:  # level shifts
        for _ in range(rng.integers(1, 3)):
            y[rng.integers(1, length) :] += rng.normal(0, 1.5)
    if rng.random() < 0.15:  # spikes
        idx = rng.choice(length, size=rng.integers(1, 5), replace=False)
        y[idx] += rng.normal(0, 4.0, len(idx))
    if rng.random() < 0.1:  # dropout: a stretch at a low constant value
        start = rng.integers(0, length - 8)
        y[start : start + rng.integers(4, 32)] = y.min()
    return y


def intermittent(length: int, rng: np.random.Generator) -> np.ndarray:
    """Sparse non-negative demand: occurrences with probability ``p`` per step (seasonally
    modulated half the time), gamma-distributed sizes."""
    t = np.arange(length)
    p = np.full(length, rng.uniform(0.05, 0.6))
    if rng.random() < 0.5:
        period = float(rng.choice(PERIODS))
        p = np.clip(p * (1 + rng.uniform(0.3, 0.9) * np.sin(2 * np.pi * t / period + rng.uniform(0, 2 * np.pi))), 0, 1)
    sizes = rng.gamma(rng.uniform(0.5, 3.0), rng.uniform(0.5, 3.0), length)
    return np.where(rng.random(length) < p, sizes, 0.0)


def synthetic_series(
    length: int, rng: np.random.Generator, gp_share: float = 0.4, intermittent_share: float = 0.0
) -> np.ndarray:
    """One series from one family, random scale and offset (float32); GP samples are
    capped at ``GP_MAX_LENGTH`` steps. (No random draw is spent on the intermittent
    family when its share is 0, so earlier corpora stay reproducible.)"""
    if intermittent_share > 0 and rng.random() < intermittent_share:
        return (intermittent(length, rng) * 10 ** rng.uniform(-1, 3)).astype(np.float32)
    if rng.random() < gp_share:
        y = kernel_synth(min(length, GP_MAX_LENGTH), rng)  # exact GP cost is cubic in length
    else:
        y = composition(length, rng)
    scale = 10 ** rng.uniform(-2, 3)
    offset = rng.normal(0, 3) * scale
    return (y * scale + offset).astype(np.float32)


def generate_corpus(
    n_series: int,
    min_length: int = 256,
    max_length: int = 1024,
    seed: int | tuple[int, ...] = 0,
    gp_share: float = 0.4,
    intermittent_share: float = 0.0,
) -> list[np.ndarray]:
    """``n_series`` synthetic series of random lengths in ``[min_length, max_length]``.

    The GP factorisations run on one BLAS thread: at these sizes that is as fast, and
    processes running side by side (pretraining two models, joblib workers) no longer
    oversubscribe the cores (two such processes on 2 cores ran 30x slower).
    """
    if n_series < 0 or min_length < 1 or max_length < min_length:
        raise ValueError("need n_series >= 0 and 1 <= min_length <= max_length")
    rng = np.random.default_rng(seed)
    with threadpool_limits(1):
        return [
            synthetic_series(int(rng.integers(min_length, max_length + 1)), rng, gp_share, intermittent_share)
            for _ in range(n_series)
        ]


def generate_corpus_parallel(
    n_series: int, n_jobs: int, seed: int = 0, chunk: int = 500, **kwargs
) -> list[np.ndarray]:
    """:func:`generate_corpus` in chunks of ``chunk`` series (chunk ``i`` seeded with
    ``(seed, i)``) over ``n_jobs`` joblib processes; the result depends on ``chunk`` but
    not on ``n_jobs`` (up to ~1e-7 relative rounding of multi-threaded Cholesky factors)."""
    from joblib import Parallel, delayed

    sizes = [min(chunk, n_series - start) for start in range(0, n_series, chunk)]
    parts = Parallel(n_jobs=n_jobs)(
        delayed(generate_corpus)(size, seed=(seed, i), **kwargs) for i, size in enumerate(sizes)
    )
    return [s for part in parts for s in part]
