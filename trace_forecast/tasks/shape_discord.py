"""Shape discords: the matrix profile's z-normalised distance, against dense neighbours.

The embedding discord (:mod:`trace_forecast.tasks.discord`) compares subsequences taken
every 8 steps, so a normal subsequence's nearest neighbour can be up to 4 steps out of
phase; on a clean periodic series that offset, not the anomaly, then ranks the distances
(UCR's archive is mostly such series). Here every ``STRIDE``-th ``LENGTH``-step
subsequence is z-normalised -- its spread counted as at least ``SPREAD_FLOOR`` of the
training data's, so that noise on a flat stretch is not stretched into a shape (a level
jump in a flat series stays visible) -- and compared with neighbours taken at *every* step:
at most ``NEIGHBOURS`` of the training series' subsequences, and as many of the series'
own (a self-join; overlapping ones excluded, as the matrix profile's trivial-match zone).
A step takes the mean distance of the subsequences covering it. A scored subsequence that
is one of the training data's does not match itself or its overlaps there
(:class:`~trace_forecast.tasks.discord.SubsequenceIndex`).

Written here rather than taken from ``stumpy``: its exact self-join is quadratic in the
series' length (10^6 points: hours on a CPU); the capped neighbour sets keep the cost
linear, and the search is a chunked, exact ``torch.cdist``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from trace_forecast.tasks.discord import (
    LENGTH,
    STRIDE,
    SubsequenceIndex,
    nearest_distance,
    neighbour_distance,
    spaced_subsequences,
    to_steps,
    usable_starts,
    znormalised,
)
from trace_forecast.tasks.scoring import tail_level

NEIGHBOURS = 32768  # neighbours of each kind (training, own), evenly spaced over every step
QUERY_CHUNK = 8192  # subsequences z-normalised at a time (8 MB of float64 windows)
SPREAD_FLOOR = 0.1  # a subsequence's spread counts as at least this share of the training data's
# A shape-discord unit counts SHAPE_WEIGHT units of the reconstruction score (the unit: the
# training distances' tail, at least UNIT_FLOOR times their median, as for the embedding
# discord). Chosen on the anomaly suite's tuning split (weights 5 to 30; docs/design.md).
SHAPE_WEIGHT = 15.0
UNIT_FLOOR = 1.5
# A fitted profile keeps the training neighbour windows it builds for scoring (16 MB per
# channel at most) while they fit in this budget, so that repeated scoring -- a detector
# fed one chunk at a time -- does not rebuild them; channels beyond it rebuild per call.
# One channel's worth, so that an application holding many fitted detectors does not hold
# many times that.
REFERENCE_CACHE_BYTES = 16 * 2**20


def dense_neighbours(series: list[np.ndarray], floor: float, limit: int = NEIGHBOURS,
                     length: int = LENGTH) -> tuple[np.ndarray, np.ndarray]:
    """``(windows [N, length], positions [N])``: at most ``limit`` of the z-normalised
    subsequences of ``series`` (univariate) taken at every step, evenly spaced
    (:func:`~trace_forecast.tasks.discord.spaced_subsequences`)."""
    return spaced_subsequences(series, 1, limit, floor, length)


def spread_floors(training: list[list[np.ndarray]]) -> np.ndarray:
    """Per channel (``training[c]``: its series), the least spread a z-normalised
    subsequence is divided by: ``SPREAD_FLOOR`` of the training data's."""
    return np.array([SPREAD_FLOOR * float(np.nanstd(np.concatenate(t))) for t in training])


def shape_distances(series: np.ndarray, floor: float, reference: np.ndarray | None = None,
                    length: int = LENGTH, stride: int = STRIDE, limit: int = NEIGHBOURS,
                    reference_positions: np.ndarray | None = None, index: SubsequenceIndex | None = None
                    ) -> np.ndarray:
    """Per-step shape-discord distance ``[T]`` of a univariate ``series``: each subsequence's
    (every ``stride`` steps) distance to its nearest neighbour among the series' own
    subsequences at every step (overlaps excluded) and the ``reference`` windows (with their
    positions and the training data's ``index``, a training subsequence's own overlaps
    excluded: :func:`~trace_forecast.tasks.discord.neighbour_distance`)."""
    starts = usable_starts(series, stride, length)
    if len(starts) == 0:
        return np.zeros(len(series))
    own, own_positions = dense_neighbours([series], floor, limit, length)
    dist = np.empty(len(starts), np.float32)
    for i in range(0, len(starts), QUERY_CHUNK):  # z-normalised queries a chunk at a time: bounded memory
        part = starts[i : i + QUERY_CHUNK]
        query = znormalised(series, part, length, floor)
        dist[i : i + QUERY_CHUNK] = neighbour_distance(series, part, query, own, own_positions, reference,
                                                       reference_positions, index, length)
    return to_steps(starts, dist, len(series), length)


def training_distances(training: list[list[np.ndarray]], floor: np.ndarray) -> list[np.ndarray]:
    """Shape distances ``[T, C]`` of each training series (``training[c][i]``: channel ``c``
    of series ``i``) to its nearest neighbour among all training subsequences, overlaps
    within a series excluded."""
    out = [np.zeros((len(x), len(training))) for x in training[0]]
    for c, parts in enumerate(training):
        reference, positions = dense_neighbours(parts, floor[c])
        offsets = np.cumsum([0] + [len(x) + LENGTH for x in parts])
        for i, x in enumerate(parts):
            starts = usable_starts(x, STRIDE)
            if len(starts):
                query = znormalised(x, starts, LENGTH, floor[c])
                d = nearest_distance(query, reference, offsets[i] + starts, positions, exclusion=LENGTH)
                out[i][:, c] = to_steps(starts, d, len(x), LENGTH)
    return out


@dataclass
class ShapeProfile:
    """A fitted shape-discord score, in the reconstruction score's units (as
    :class:`~trace_forecast.tasks.discord.DiscordProfile` maps the embedding discord): per
    channel, the training series (their subsequences are the reference neighbours), the
    spread floor, and the level and unit of the training distances and of the training
    scores."""

    training: list[list[np.ndarray]]
    floor: np.ndarray
    distance_center: np.ndarray
    distance_unit: np.ndarray
    score_center: np.ndarray
    score_unit: np.ndarray
    weight: float = SHAPE_WEIGHT
    _references: dict[int, tuple] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __getstate__(self) -> dict:
        """Pickled without the cached neighbour windows (rebuilt from ``training`` on use)."""
        return {**self.__dict__, "_references": {}}

    @classmethod
    def fit(cls, series: list[np.ndarray], scores: list[np.ndarray], weight: float = SHAPE_WEIGHT,
            unit_floor: float = UNIT_FLOOR, distances: list[np.ndarray] | None = None
            ) -> tuple[ShapeProfile, list[np.ndarray]]:
        """From the training series and their scores (``[T, C]`` arrays each): the profile
        and the training series' scores with the shape discord joined (their maximum). A
        training subsequence's distance is to its nearest training neighbour, overlaps
        excluded (:func:`training_distances`, unless given)."""
        training = [[np.asarray(s[:, c], np.float32) for s in series] for c in range(series[0].shape[1])]
        floor = spread_floors(training)
        if distances is None:
            distances = training_distances(training, floor)
        d_center, d_unit = tail_level(np.concatenate(distances), unit_floor)
        s_center, s_unit = tail_level(np.concatenate(scores))
        profile = cls(training, floor, d_center, d_unit, s_center, s_unit, weight)
        return profile, [np.maximum(s, profile.mapped(d)) for s, d in zip(scores, distances, strict=True)]

    def mapped(self, dist: np.ndarray) -> np.ndarray:
        """Shape distances ``[T, C]`` in the reconstruction score's units."""
        return self.score_center + self.weight * self.score_unit * (dist - self.distance_center) / self.distance_unit

    def distances(self, values: np.ndarray) -> np.ndarray:
        """Shape distances ``[T, C]`` of a ``[T, C]`` array against the training neighbours."""
        out = []
        for c in range(values.shape[1]):
            reference, positions, index = self.reference(c)
            out.append(shape_distances(values[:, c], self.floor[c], reference, reference_positions=positions,
                                       index=index))
        return np.stack(out, axis=1)

    def reference(self, channel: int) -> tuple[np.ndarray, np.ndarray, SubsequenceIndex]:
        """Channel ``channel``'s training neighbour windows, their positions and the training
        data's :class:`~trace_forecast.tasks.discord.SubsequenceIndex`, kept while the
        cache's budget (``REFERENCE_CACHE_BYTES``) allows."""
        cached = self._references.get(channel)
        if cached is not None:
            return cached
        reference, positions = dense_neighbours(self.training[channel], self.floor[channel])
        built = (reference, positions, SubsequenceIndex.of(self.training[channel]))
        if sum(r[0].nbytes for r in self._references.values()) + reference.nbytes <= REFERENCE_CACHE_BYTES:
            self._references[channel] = built
        return built
