"""Discords in the backbone's embedding space: a learned matrix profile.

A reconstruction error cannot see an anomaly that reconstructs well -- a missing or
repeated beat, a cycle smoother than usual. Those are *discords*: subsequences unlike
every other, which the matrix profile finds by the nearest-neighbour distance between
z-normalised subsequences. Here each subsequence of ``length`` steps (every ``stride``
steps) is encoded on its own by the backbone (RevIN normalises it, as z-normalisation
does), its patch tokens averaged in ``GROUPS`` consecutive groups and concatenated into
one descriptor, and a subsequence's discord distance is the Euclidean distance to its
nearest neighbour among the series' own subsequences (overlapping ones excluded: the
matrix profile's trivial-match zone) and the training series' descriptors. A step takes
the mean distance of the subsequences that cover it.

A subsequence of the scored series that *is* a training subsequence -- a detector scoring
the data it was fitted on, ``fit(X).transform(X)``, or a series that begins with its
training prefix -- would find itself among the training descriptors at distance 0, and an
anomaly inside the training data would vanish. :class:`SubsequenceIndex` recognises such a
subsequence by its values, and its trivial-match zone in the training data is excluded as in
the self-join.

Written here rather than taken from a matrix-profile library (``stumpy``) because the
vectors are the backbone's embeddings, not raw subsequences; the nearest-neighbour search
is a chunked, exact ``torch.cdist``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trace_forecast.engine.threads import limit_worker_threads

LENGTH, STRIDE = 128, 8  # subsequence length and step (chosen on the anomaly suite's tuning split)
GROUPS = 4          # token groups per descriptor (16 patches of a 128-step subsequence -> 4 x d_model)
MAX_REFERENCE = 4096  # reference descriptors kept (evenly spaced): bounds memory and search time
# The discord unit is at least this share of the median distance, and a discord counts WEIGHT
# reconstruction-score units per discord unit. Nearest-neighbour distances of a regular series
# bunch tightly: a unit of their tiny spread would make any new normal series look discordant,
# so on most series the floor sets the unit and the score reads the distance relative to the
# typical one (twice the median distance scores WEIGHT / UNIT_FLOOR = 3.3 units). A discord -- a
# shape unlike any normal one -- is seldom a false alarm, while the reconstruction score's short
# span rises on every noisy step; hence the weight. Both chosen together on the anomaly suite's
# tuning split with the default smoothing (floors 0.25-2, weights 1-6): by VUS-PR relative to the
# best baseline on the suite where that ratio is worst, ties within 0.02 broken by the mean over
# suites (0.82 and 0.96; the previous 0.25 and 1: 0.55 and 0.86).
UNIT_FLOOR = 1.5
WEIGHT = 5.0
# discords="auto" joins discords where the training data repeats its shapes: where a
# subsequence's nearest neighbour is at least MIN_CONTRAST times closer than a random one
# (:func:`relative_contrast`). Where it is not (an irregular series, most web-service KPIs),
# every subsequence is a discord of sorts and the distance ranks noise above the anomalies.
# Chosen on the anomaly suite's tuning split (cuts from 1.8 to 4; docs/design.md).
MIN_CONTRAST = 2.5
CONTRAST_SUBSEQUENCES = 2048  # evenly spaced subsequences (and random pairs) the contrast reads


def subsequence_starts(n: int, length: int, stride: int) -> np.ndarray:
    """Starts of the subsequences of a series of ``n`` steps: every ``stride`` steps, and
    one ending at the series end (none if ``n < length``)."""
    if n < length:
        return np.zeros(0, np.int64)
    starts = np.arange(0, n - length + 1, stride)
    return starts if starts[-1] == n - length else np.append(starts, n - length)


@torch.inference_mode()
def embed_subsequences(backbone, series: np.ndarray, starts: np.ndarray, length: int,
                       batch_size: int = 512) -> np.ndarray:
    """Descriptors ``[len(starts), GROUPS * d]`` of the subsequences ``series[s : s + length]``."""
    limit_worker_threads()
    values = np.asarray(series, np.float32)
    backbone = backbone.cpu().eval()
    out = [np.zeros((0, GROUPS * backbone.config.d_model), np.float32)]
    for i in range(0, len(starts), batch_size):
        idx = starts[i : i + batch_size, None] + np.arange(length)[None, :]
        tokens = backbone.encode(torch.from_numpy(values[idx])[:, None, :]).tokens[:, 0].float()   # [b, P, d]
        b, p, d = tokens.shape
        out.append(tokens.reshape(b, GROUPS, p // GROUPS, d).mean(2).reshape(b, -1).numpy())
    return np.concatenate(out)


def subsequence_embeddings(backbone, series: np.ndarray, length: int, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """``(starts [N], descriptors [N, GROUPS * d])`` of every subsequence of a univariate
    ``series`` (:func:`subsequence_starts`)."""
    starts = subsequence_starts(len(series), length, stride)
    return starts, embed_subsequences(backbone, series, starts, length)


def nearest_distance(query: np.ndarray, reference: np.ndarray, query_positions: np.ndarray | None = None,
                     reference_positions: np.ndarray | None = None, exclusion: int = 0,
                     block: int = 1 << 21, none: float = 0.0) -> np.ndarray:
    """Distance from each query row to its nearest reference row; with positions, rows
    less than ``exclusion`` steps apart are not neighbours (trivial matches). No
    admissible neighbour, or an empty reference, gives ``none``. Queries go in chunks of about
    ``block`` query-reference pairs, so the memory stays bounded (8 MB of distances)
    whatever the sizes."""
    limit_worker_threads()
    if len(reference) == 0 or len(query) == 0:
        return np.full(len(query), none, np.float32)
    q = torch.from_numpy(np.ascontiguousarray(query, np.float32))
    r = torch.from_numpy(np.ascontiguousarray(reference, np.float32))
    excluded = query_positions is not None and exclusion > 0
    if excluded:
        q_pos = torch.from_numpy(np.asarray(query_positions, np.int64))
        r_pos = torch.from_numpy(np.asarray(reference_positions, np.int64))
    chunk = max(16, block // len(r))
    out = np.empty(len(q), np.float32)
    for i in range(0, len(q), chunk):
        d = torch.cdist(q[i : i + chunk], r)
        if excluded:
            d.masked_fill_((q_pos[i : i + chunk, None] - r_pos[None, :]).abs_() < exclusion, float("inf"))
        out[i : i + chunk] = d.min(dim=1).values.numpy()
    out[~np.isfinite(out)] = none
    return out


def znormalised(series: np.ndarray, starts: np.ndarray, length: int, floor: float | None = None) -> np.ndarray:
    """The subsequences ``series[s : s + length]`` z-normalised ``[len(starts), length]``;
    a subsequence's spread counts as at least ``floor`` (default: a thousandth of the
    series' mean size, so a flat one is not divided by zero), and missing values become 0
    (the subsequence's mean) after normalising."""
    values = np.asarray(series, np.float64)
    windows = values[starts[:, None] + np.arange(length)[None, :]]
    with np.errstate(all="ignore"):
        center, spread = np.nanmean(windows, 1, keepdims=True), np.nanstd(windows, 1, keepdims=True)
    if floor is None:
        floor = 1e-3 * (np.nanmean(np.abs(values)) if np.isfinite(values).any() else 0.0)
    z = (windows - center) / np.maximum(spread, max(floor, 1e-12))
    return np.nan_to_num(z, nan=0.0).astype(np.float32)


def usable_starts(series: np.ndarray, stride: int, length: int = LENGTH) -> np.ndarray:
    """The starts (every ``stride`` steps, :func:`subsequence_starts`) of the subsequences
    that hold enough observed values (:func:`observed_starts`)."""
    starts = subsequence_starts(len(series), length, stride)
    return starts[observed_starts(np.asarray(series), starts, length)] if len(starts) else starts


def series_offsets(series: list[np.ndarray], length: int = LENGTH) -> np.ndarray:
    """Where each of several pooled series begins in one position axis: a position is a
    start plus its series' offset, so that only subsequences of one series overlap."""
    return np.cumsum([0] + [len(x) + length for x in series])


def spaced_subsequences(series: list[np.ndarray], stride: int, limit: int, floor: float | None = None,
                        length: int = LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """``(windows [N, length], positions [N])``: at most ``limit`` of the usable subsequences
    of ``series`` (univariate, pooled; every ``stride`` steps), evenly spaced, z-normalised
    (:func:`znormalised` with ``floor``); positions as :func:`series_offsets` lays them."""
    offsets = series_offsets(series, length)
    pairs = [(i, s) for i, x in enumerate(series) for s in usable_starts(x, stride, length)]
    keep = [pairs[k] for k in evenly_spaced(len(pairs), limit)]
    windows = [znormalised(x, np.array([s for j, s in keep if j == i], np.int64), length, floor)
               for i, x in enumerate(series)]
    positions = np.array([offsets[i] + s for i, s in keep], np.int64)
    return (np.concatenate(windows) if windows else np.zeros((0, length), np.float32)), positions


def relative_contrast(series: list[np.ndarray], length: int = LENGTH, stride: int = STRIDE,
                      limit: int = CONTRAST_SUBSEQUENCES, seed: int = 0) -> float:
    """How much the training data repeats its shapes: the median distance between random
    pairs of its z-normalised ``length``-step subsequences over the median distance from each
    to its nearest neighbour (overlapping ones excluded) -- the relative contrast of
    nearest-neighbour search (He, Kumar and Chang, ICML 2012). A periodic series scores far
    above 1; noise scores near 1 (every neighbour is as far as any other). Univariate
    ``series`` (pooled); at most ``limit`` evenly spaced subsequences; NaN with fewer than 8."""
    z, position = spaced_subsequences(series, stride, limit, None, length)
    if len(z) < 8:
        return float("nan")
    nearest = nearest_distance(z, z, position, position, exclusion=length)
    a, b = np.random.default_rng(seed).integers(len(z), size=(2, len(z)))
    random = np.linalg.norm(z[a] - z[b], axis=1)[a != b]
    near = float(np.median(nearest))
    return float(np.median(random)) / near if near > 0 else float("inf")


def evenly_spaced(n: int, limit: int) -> np.ndarray:
    """At most ``limit`` evenly spaced indices of ``range(n)``."""
    return np.unique(np.linspace(0, n - 1, min(n, limit)).astype(int)) if n else np.zeros(0, int)


def to_steps(starts: np.ndarray, values: np.ndarray, n: int, length: int) -> np.ndarray:
    """Per-step mean of the values of the subsequences ``[start, start + length)`` covering
    each step (steps no subsequence covers take the overall median; NaN values are skipped)."""
    keep = np.isfinite(values)  # a subsequence without a value (mostly missing) covers nothing
    starts, values = starts[keep], values[keep]
    total, count = np.zeros(n + 1), np.zeros(n + 1)
    np.add.at(total, starts, values)
    np.add.at(total, np.minimum(starts + length, n), -values)
    np.add.at(count, starts, 1.0)
    np.add.at(count, np.minimum(starts + length, n), -1.0)
    total, count = np.cumsum(total)[:n], np.cumsum(count)[:n]
    out = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return np.where(np.isnan(out), np.nanmedian(out) if np.isfinite(out).any() else 0.0, out)


# A subsequence with less than this share of observed values is not compared (missing values).
MIN_OBSERVED_SHARE = 0.5


def observed_starts(series: np.ndarray, starts: np.ndarray, length: int) -> np.ndarray:
    """Which subsequences hold at least :data:`MIN_OBSERVED_SHARE` observed values."""
    counts = np.r_[0, np.cumsum(np.isfinite(series))]
    return (counts[starts + length] - counts[starts]) >= MIN_OBSERVED_SHARE * length


def reference_descriptors(backbone, series: list[np.ndarray], length: int, stride: int
                          ) -> tuple[np.ndarray, np.ndarray]:
    """``(descriptors, positions)``: the training descriptors kept as neighbours, at most
    ``MAX_REFERENCE`` of the subsequences of ``series`` (univariate), evenly spaced (only
    those are embedded; float16: they are fitted state), and their positions
    (:func:`series_offsets`)."""
    pairs = [(i, s) for i, x in enumerate(series) for s in usable_starts(x, stride, length)]
    keep = [pairs[k] for k in evenly_spaced(len(pairs), MAX_REFERENCE)]
    parts = [embed_subsequences(backbone, x, np.array([s for j, s in keep if j == i], np.int64), length)
             for i, x in enumerate(series)]
    offsets = series_offsets(series, length)
    positions = np.array([offsets[i] + s for i, s in keep], np.int64)
    return np.concatenate(parts).astype(np.float16), positions


#: The position of a subsequence that is not (exactly once) in the training data: farther
#: than any exclusion zone from every training position.
NOWHERE = -(1 << 50)


def fingerprints(series: np.ndarray, starts: np.ndarray, length: int, chunk: int = 8192) -> np.ndarray:
    """A 64-bit fingerprint ``[len(starts)]`` of each subsequence ``series[s : s + length]``:
    a random linear hash of its float32 bit patterns (equal subsequences, missing values
    included, get equal fingerprints; two different ones collide with probability about
    2^-32)."""
    bits = np.ascontiguousarray(series, np.float32).view(np.uint32).astype(np.uint64)
    weights = np.random.default_rng(length).integers(1, 1 << 62, size=length, dtype=np.uint64) | np.uint64(1)
    out = np.empty(len(starts), np.uint64)
    for i in range(0, len(starts), chunk):  # wraps modulo 2^64, as a hash should
        out[i : i + chunk] = (bits[starts[i : i + chunk, None] + np.arange(length)] * weights).sum(axis=1)
    return out


@dataclass(frozen=True)
class SubsequenceIndex:
    """Where a scored subsequence stands in the training data, if it is one of its
    subsequences: the fingerprints (sorted) of every training subsequence at the discord
    stride, with their positions (:func:`series_offsets`). A scored series aligned with its
    training data -- the same series, or one that begins with it -- has its subsequences at
    the same starts; one shifted by a part of the stride is not recognised, and its
    overlapping training neighbours, a few steps out of phase, are as far as any other
    near neighbour."""

    keys: np.ndarray
    positions: np.ndarray
    length: int = LENGTH

    @classmethod
    def of(cls, series: list[np.ndarray], length: int = LENGTH, stride: int = STRIDE) -> SubsequenceIndex:
        offsets = series_offsets(series, length)
        starts = [subsequence_starts(len(x), length, stride) for x in series]
        keys = np.concatenate([fingerprints(x, s, length) for x, s in zip(series, starts, strict=True)])
        positions = np.concatenate([offsets[i] + s for i, s in enumerate(starts)]).astype(np.int64)
        order = np.argsort(keys, kind="stable")
        return cls(keys[order], positions[order], length)

    def locate(self, series: np.ndarray, starts: np.ndarray) -> np.ndarray:
        """The training position ``[len(starts)]`` of each subsequence of ``series`` that
        occurs exactly once in the training data; :data:`NOWHERE` for the others (new data,
        and a shape the training data repeats exactly: its other copies are its neighbours)."""
        keys = fingerprints(series, starts, self.length)
        first, last = np.searchsorted(self.keys, keys, "left"), np.searchsorted(self.keys, keys, "right")
        once = last - first == 1
        out = np.full(len(keys), NOWHERE, np.int64)
        out[once] = self.positions[first[once]]
        return out


def neighbour_distance(series: np.ndarray, starts: np.ndarray, query: np.ndarray, own: np.ndarray,
                       own_positions: np.ndarray, reference: np.ndarray | None,
                       reference_positions: np.ndarray | None, index: SubsequenceIndex | None,
                       length: int) -> np.ndarray:
    """Each query's (the subsequences of ``series`` at ``starts``) distance to its nearest
    neighbour among the series' own subsequences ``own`` (a self-join, overlaps excluded)
    and the training data's ``reference`` -- with their positions and the training data's
    ``index``, the neighbours within ``length`` steps of the query's own training position
    excluded (:meth:`SubsequenceIndex.locate`). A query with no admissible neighbour in
    either set gets 0: no evidence."""
    d = nearest_distance(query, own, starts, own_positions, exclusion=length, none=np.inf)
    if reference is not None and len(reference):
        where = None if index is None or reference_positions is None else index.locate(series, starts)
        d = np.minimum(d, nearest_distance(query, reference, where, reference_positions,
                                           exclusion=0 if where is None else length, none=np.inf))
    return np.where(np.isinf(d), 0.0, d)


def discord_distances(backbone, series: np.ndarray, reference: np.ndarray | None, length: int,
                      stride: int, chunk: int = 8192, reference_positions: np.ndarray | None = None,
                      index: SubsequenceIndex | None = None) -> np.ndarray:
    """Per-step discord distance ``[T]`` of a univariate ``series``: each subsequence's
    distance to its nearest neighbour among the series' own subsequences (a self-join,
    trivial matches excluded; at most ``MAX_REFERENCE`` evenly spaced neighbours) and the
    ``reference`` descriptors of the training data, if any -- with their positions and the
    training data's ``index``, a subsequence of the training data does not match itself
    (:func:`neighbour_distance`). The self-join is what keeps a series that has drifted
    from its training data from being one long discord. Subsequences are embedded and
    searched ``chunk`` at a time: memory does not grow with the series."""
    starts = subsequence_starts(len(series), length, stride)
    usable = observed_starts(np.asarray(series), starts, length)
    own = np.flatnonzero(usable)[evenly_spaced(int(usable.sum()), MAX_REFERENCE)]
    neighbours = embed_subsequences(backbone, series, starts[own], length)
    dist = np.zeros(len(starts), np.float32)
    for i in range(0, len(starts), chunk):
        part = embed_subsequences(backbone, series, starts[i : i + chunk], length)
        dist[i : i + chunk] = neighbour_distance(series, starts[i : i + chunk], part, neighbours, starts[own],
                                                 reference, reference_positions, index, length)
    dist[~usable] = np.nan  # mostly missing: no distance (to_steps skips it)
    return to_steps(starts, dist, len(series), length)


@dataclass
class DiscordProfile:
    """A fitted discord score, calibrated to join the reconstruction score.

    Per channel: the training series' reference descriptors (with their positions and the
    training data's :class:`SubsequenceIndex`, so that a training subsequence scored again
    does not match itself; ``None`` in a profile pickled before them), and the level and unit
    (median, 99th percentile above it: :func:`~trace_forecast.tasks.scoring.tail_level`)
    of two training scores -- the discord distances (a self-join of the training series)
    and the reconstruction scores. :meth:`mapped` puts the discord distance in the
    reconstruction score's units (the score keeps its units, and with them the thresholds'
    meaning; ``weight`` units per unit of the distances' training tail) and :meth:`combine`
    takes the larger: a step scores high when
    either view finds it unlike normal data.
    """

    references: list[np.ndarray]
    discord_center: np.ndarray
    discord_unit: np.ndarray
    score_center: np.ndarray
    score_unit: np.ndarray
    length: int = LENGTH
    stride: int = STRIDE
    weight: float = WEIGHT
    positions: list[np.ndarray] | None = None
    indexes: list[SubsequenceIndex] | None = None

    @classmethod
    def from_training(cls, references: list[tuple[np.ndarray, np.ndarray]], distances: list[np.ndarray],
                      scores: list[np.ndarray], weight: float = WEIGHT, floor: float = UNIT_FLOOR,
                      indexes: list[SubsequenceIndex] | None = None) -> tuple[DiscordProfile, list[np.ndarray]]:
        """From each channel's reference descriptors and positions
        (:func:`reference_descriptors`), each training series' discord distances and
        reconstruction scores (``[T, C]``) and each channel's :class:`SubsequenceIndex`:
        the profile and the training series' combined scores (``[T, C]``)."""
        from trace_forecast.tasks.scoring import tail_level

        d_center, d_unit = tail_level(np.concatenate(distances), floor)
        s_center, s_unit = tail_level(np.concatenate(scores))
        profile = cls([r for r, _ in references], d_center, d_unit, s_center, s_unit, weight=weight,
                      positions=[p for _, p in references], indexes=indexes)
        return profile, [profile.combine(s, d) for s, d in zip(scores, distances, strict=True)]

    @classmethod
    def fit(cls, backbone, series: list[np.ndarray], scores: list[np.ndarray], weight: float = WEIGHT,
            floor: float = UNIT_FLOOR) -> tuple[DiscordProfile, list[np.ndarray]]:
        """From the training series (``[T, C]`` arrays) and their per-channel
        reconstruction scores (``[T, C]``); the training series' discord distances come
        from their self-join, since each is in the reference."""
        channels = [[s[:, c] for s in series] for c in range(series[0].shape[1])]
        refs = [reference_descriptors(backbone, parts, LENGTH, STRIDE) for parts in channels]
        distances = [np.stack([discord_distances(backbone, s[:, c], None, LENGTH, STRIDE) for c in range(len(channels))],
                              axis=1) for s in series]
        indexes = [SubsequenceIndex.of(parts, LENGTH, STRIDE) for parts in channels]
        return cls.from_training(refs, distances, scores, weight, floor, indexes)

    def combine(self, scores: np.ndarray, dist: np.ndarray) -> np.ndarray:
        """The larger of the two in the reconstruction score's units."""
        return np.maximum(scores, self.mapped(dist))

    def mapped(self, dist: np.ndarray) -> np.ndarray:
        """Discord distances ``[T, C]`` in the reconstruction score's units (``weight``
        score units per unit of the distances' training tail)."""
        return self.score_center + self.weight * self.score_unit * (dist - self.discord_center) / self.discord_unit

    def distances(self, backbone, values: np.ndarray) -> np.ndarray:
        """Discord distances ``[T, C]`` of a ``[T, C]`` array against the training references."""
        return np.stack([discord_distances(backbone, values[:, c], self.references[c], self.length, self.stride,
                                           reference_positions=None if self.positions is None else self.positions[c],
                                           index=None if self.indexes is None else self.indexes[c])
                         for c in range(values.shape[1])], axis=1)
