"""Discords in the backbone's embedding space: how far each stretch of a series lies from
its nearest neighbour among the reference (training) stretches.

A reconstruction error cannot see an anomaly that reconstructs well -- a missing or
repeated beat, a cycle smoother than usual. Those are *discords*: stretches unlike every
other stretch, which matrix-profile methods find by nearest-neighbour distance between
z-normalised subsequences. Here the subsequence is replaced by the encoder's patch
token: each 8-step patch, embedded in the context of its 512-step window (RevIN
normalises every window, as z-normalisation does). A step's discord score is the
Euclidean distance from its patch token to the nearest reference token; for reference
tokens themselves the neighbours within ``exclusion`` patches are excluded (the
matrix profile's trivial-match zone).

Written here rather than taken from a matrix-profile library because the vectors are the
backbone's tokens, not raw subsequences; the nearest-neighbour search is a chunked
``torch.cdist`` (exact, memory bounded by ``chunk``).
"""

from __future__ import annotations

import numpy as np
import torch

from trace_forecast.engine.threads import limit_worker_threads
from trace_forecast.network import TraceNetwork


@torch.inference_mode()
def patch_tokens(network: TraceNetwork, series: np.ndarray, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Encoder tokens of a univariate ``series``: ``(tokens [N, d], starts [N])``, one per
    8-step patch, from unmasked windows of ``context_length`` steps laid end to end and
    aligned to the series end (the first window left-padded where needed). ``starts`` is
    the first step of each token's patch (negative for padding, whose tokens are dropped)."""
    limit_worker_threads()
    backbone = network.backbone.cpu().eval()
    length, patch = network.spec.context_length, backbone.patch_len
    n = len(series)
    ends = np.arange(n, 0, -length)[::-1]                      # windows end at n, n - L, ...
    padded = np.concatenate([np.zeros(length, np.float32), np.asarray(series, np.float32)])
    observed = np.concatenate([np.zeros(length, np.float32), np.ones(n, np.float32)])
    tokens, starts = [], []
    for i in range(0, len(ends), batch_size):
        chunk = ends[i : i + batch_size]
        idx = chunk[:, None] + np.arange(length)[None, :]        # padded coordinates
        x = torch.from_numpy(padded[idx])[:, None, :]
        obs = torch.from_numpy(observed[idx])
        enc = backbone.encode(x, obs)
        tokens.append(enc.tokens[:, 0].float().reshape(-1, enc.tokens.shape[-1]).numpy())
        starts.append((idx[:, ::patch] - length).ravel())
    tokens, starts = np.concatenate(tokens), np.concatenate(starts)
    keep = starts >= 0
    return tokens[keep], starts[keep]


def nearest_distance(
    query: np.ndarray,
    reference: np.ndarray,
    exclusion: int | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Distance from each query row to its nearest reference row. With ``exclusion``,
    ``query`` *is* ``reference`` (same order) and rows within ``exclusion`` positions of
    each other are not neighbours."""
    limit_worker_threads()
    q, r = torch.from_numpy(np.ascontiguousarray(query, np.float32)), torch.from_numpy(
        np.ascontiguousarray(reference, np.float32))
    out = np.empty(len(q), np.float32)
    for i in range(0, len(q), chunk):
        d = torch.cdist(q[i : i + chunk], r)
        if exclusion is not None:
            rows = torch.arange(i, min(i + chunk, len(q)))[:, None]
            d[(rows - torch.arange(len(r))[None, :]).abs() <= exclusion] = float("inf")
        out[i : i + chunk] = d.min(dim=1).values.numpy()
    out[~np.isfinite(out)] = 0.0
    return out


def tokens_to_steps(values: np.ndarray, starts: np.ndarray, n: int, patch: int) -> np.ndarray:
    """Per-step values ``[n]`` from per-patch ``values``: each step takes its patch's value."""
    out = np.zeros(n, np.float32)
    for offset in range(patch):
        pos = starts + offset
        keep = (pos >= 0) & (pos < n)
        out[pos[keep]] = values[keep]
    return out
