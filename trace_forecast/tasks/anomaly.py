"""Anomaly detection shared by the sktime detector and the Darts scorer: fine-tune on
normal data with the score's own masks, then calibrate the score on the training data --
standardise the errors against the training errors and, with discords, fit the
embedding-discord profile that joins them (one code path, so both front ends give
identical scores)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.ndimage import minimum_filter1d

from trace_forecast.backbone.moment import MomentBackbone
from trace_forecast.engine import TrainSettings
from trace_forecast.engine.trainer import FitResult
from trace_forecast.errors import DataError
from trace_forecast.metrics import segments
from trace_forecast.network import NetworkSpec, TraceNetwork
from trace_forecast.tasks.discord import (
    LENGTH,
    MIN_CONTRAST,
    STRIDE,
    UNIT_FLOOR,
    WEIGHT,
    DiscordProfile,
    SubsequenceIndex,
    relative_contrast,
)
from trace_forecast.tasks.reconstruct import fit_reconstruction
from trace_forecast.tasks.scoring import (
    SCORES,
    ErrorScale,
    MultiScale,
    anomaly_scores,
    channel_errors,
    smooth_errors,
    unspread,
)
from trace_forecast.tasks.shape_discord import SHAPE_WEIGHT, ShapeProfile
from trace_forecast.tasks.spikes import SPIKE, SpikeProfile, spread


@dataclass(frozen=True)
class ScoreSettings:
    """How a fitted network scores: the ``score`` variant, window stride, smoothing, and
    whether embedding discords join the score (``True``, ``False``, or ``"auto"``: where the
    training data repeats its shapes, :func:`discords_wanted`; the pretrained ``backbone`` embeds them;
    ``discord_weight`` and ``discord_floor``: :mod:`trace_forecast.tasks.discord`'s ``WEIGHT``
    and ``UNIT_FLOOR``); ``spikes``: whether the point-spike component joins (``True``,
    ``False``, or ``"auto"``: channels with Gaussian-like differences, :mod:`~trace_forecast.tasks.spikes`)."""

    score: str
    stride: int
    score_window: int
    device: str = "cpu"
    discords: bool | str = False
    backbone: object = None
    smoothing: str = "max"
    discord_weight: float = WEIGHT
    discord_floor: float = UNIT_FLOOR
    shape_weight: float = SHAPE_WEIGHT
    spikes: bool | str = False

    @classmethod
    def from_params(cls, score: str, stride: int | None, score_window: int, context_length: int,
                    device: str, discords: bool | str = False, backbone: object = None,
                    smoothing: str = "max", spikes: bool | str = False) -> ScoreSettings:
        return cls(score, stride if stride is not None else max(1, context_length // 8), score_window, device,
                   discords, backbone, smoothing, spikes=spikes)

    def errors(self, network: TraceNetwork, values: np.ndarray) -> np.ndarray:
        """Hidden-step errors ``[T, C]`` of a ``[T, C]`` array."""
        return channel_errors(network, values, self.score, self.stride, device=self.device)

    def pretrained(self) -> MomentBackbone:
        from trace_forecast.backbone import shared_backbone

        return shared_backbone(self.backbone)

    def step_scores(self, network: TraceNetwork, calibration: Calibration, values: np.ndarray) -> StepScores:
        """Score a ``[T, C]`` array: its components and their evidence (:class:`StepScores`).
        A missing step (NaN) scores at most the median training score in each, so a gap is
        never flagged (the observed steps around it keep their own scores)."""
        distances = shape = None
        if calibration.discords is not None:
            distances = calibration.discords.distances(self.pretrained(), values)
        if calibration.shapes is not None:
            shape = calibration.shapes.distances(values)
        return self.from_errors(calibration, self.errors(network, values), distances, ~np.isfinite(values), shape,
                                values)

    def from_errors(self, calibration: Calibration, errors: np.ndarray, distances: np.ndarray | None = None,
                    missing: np.ndarray | None = None, shape_distances: np.ndarray | None = None,
                    values: np.ndarray | None = None) -> StepScores:
        """:meth:`step_scores` from the hidden-step errors ``[T, C]`` and, with discords, the
        embedding- and shape-discord distances ``[T, C]`` (what the network, the backbone and
        :class:`ShapeProfile` compute); with the spike component, the scored ``values``."""
        if calibration.discords is not None and distances is None:
            raise ValueError("a calibration with discords needs the discord distances")
        if calibration.shapes is not None and shape_distances is None:
            raise ValueError("a calibration with shape discords needs the shape distances")
        if calibration.spikes is not None and values is None:
            raise ValueError("a calibration with the spike component needs the scored values")
        z = calibration.scale.standardise(errors)
        if calibration.multi_scale is not None:
            names = [f"reconstruction, {s}-step span" for s in calibration.multi_scale.scales]
            parts = dict(zip(names, calibration.multi_scale.span_scores(z), strict=True))
            evidence = dict(zip(names, calibration.multi_scale.span_evidence(z), strict=True))
        else:
            parts = {"reconstruction": smooth_errors(z, self.score_window)}
            evidence = {"reconstruction": unspread(z, self.score_window)}
        if calibration.discords is not None:
            parts["discord"] = evidence["discord"] = calibration.discords.mapped(distances)
        if calibration.shapes is not None:
            parts["shape discord"] = evidence["shape discord"] = calibration.shapes.mapped(shape_distances)
        if calibration.spikes is not None:  # spread over the short span as the reconstruction's; labels stay on the step
            evidence[SPIKE] = calibration.spikes.mapped(values)
            parts[SPIKE] = spread(evidence[SPIKE], max(1, self.score_window // 16))
        if calibration.flat is not None and calibration.flat.any():  # no notion of normal: never the score
            flat = np.broadcast_to(calibration.flat, errors.shape)
            missing = flat if missing is None else missing | flat
        if missing is not None and missing.any():  # a missing step is never an anomaly by itself
            typical = np.median(calibration.train_scores)
            parts, evidence = ({name: np.where(missing, np.fmin(part, typical), part) for name, part in d.items()}
                               for d in (parts, evidence))
        return StepScores(parts, evidence)

    def components(self, network: TraceNetwork, calibration: Calibration, values: np.ndarray,
                   component_wise: bool = False) -> dict[str, np.ndarray]:
        """The score's components of a ``[T, C]`` array (:meth:`StepScores.components`)."""
        return self.step_scores(network, calibration, values).components(component_wise)

    def scores(self, network: TraceNetwork, calibration: Calibration, values: np.ndarray,
               component_wise: bool = False) -> np.ndarray:
        """Anomaly scores of a ``[T, C]`` array: ``[T]``, or ``[T, C]`` if ``component_wise``;
        the largest of :meth:`components`."""
        return self.step_scores(network, calibration, values).scores(component_wise)


DISCORDS = frozenset({"discord", "shape discord"})  # the components measured on subsequences


@dataclass(frozen=True)
class StepScores:
    """One series' scored steps, ``[T, C]`` arrays in the score's units, by component: the
    reconstruction score at each smoothing span (``"reconstruction, 8-step span"``; plain
    ``"reconstruction"`` with ``smoothing="max"``) and, with discords, ``"discord"``.

    ``parts`` are the scores; ``evidence`` is each component before its smoothing's maximum
    filter spreads it over the surroundings (:func:`~trace_forecast.tasks.scoring.unspread`;
    never above the score). Scores rank steps; labels come from the evidence, so that a
    flagged run covers the steps that crossed the threshold themselves."""

    parts: dict[str, np.ndarray]
    evidence: dict[str, np.ndarray]

    def components(self, component_wise: bool = False) -> dict[str, np.ndarray]:
        """Each component ``[T]`` (channels by their maximum) or ``[T, C]`` if
        ``component_wise``; the score is their largest."""
        return self.parts if component_wise else {name: part.max(axis=1) for name, part in self.parts.items()}

    def scores(self, component_wise: bool = False) -> np.ndarray:
        """The scores: ``[T]``, or ``[T, C]`` if ``component_wise``."""
        per_channel = np.max(list(self.parts.values()), axis=0)
        return per_channel if component_wise else per_channel.max(axis=1)

    def strongest_evidence(self) -> np.ndarray:
        """Each step's largest evidence ``[T]`` over components and channels."""
        return np.max(list(self.evidence.values()), axis=0).max(axis=1)

    def _core_evidence(self) -> tuple[np.ndarray, np.ndarray]:
        """The largest evidence ``[T]`` of the pointwise components and the discords' core
        evidence (``-inf`` where there are none): a discord distance is the mean over the
        subsequences covering a step, so a burst raises it up to ``LENGTH - 1`` steps to each
        side, and its least within ``LENGTH - 1`` steps to each side undoes that spread."""
        length = len(next(iter(self.evidence.values())))
        pointwise, discords = [np.full(length, -np.inf)], [np.full(length, -np.inf)]
        for name, part in self.evidence.items():
            if name in DISCORDS:
                discords.append(minimum_filter1d(part, 2 * LENGTH - 1, axis=0, mode="nearest").max(axis=1))
            else:
                pointwise.append(part.max(axis=1))
        return np.max(pointwise, axis=0), np.max(discords, axis=0)

    def flags(self, threshold: float | None, contamination: float | None = None) -> np.ndarray:
        """Flagged steps ``[T]`` (bool): with ``threshold=None``, the ``contamination`` share
        with the most evidence. Otherwise the runs whose evidence crosses ``threshold`` in any
        component and channel, each narrowed to its core: the steps whose core evidence
        (:meth:`_core_evidence`) crosses too, or, where none does, the ``STRIDE`` steps to
        each side of its strongest core step. Each run still flags; a 5-step burst no longer
        flags the 259 steps its covering subsequences span.

        Within ``LENGTH - 1`` steps of either end of the series the discords' minimum sees one
        side only: every subsequence covering the steps after a burst near the end holds the
        burst, so their core cannot say where it stops. A discord core that reaches the first
        or the last step is set aside, and the pointwise evidence places the run (a burst 100
        steps before the end flagged every step after it). Core pieces at most ``STRIDE``
        steps apart, closer than the discords can part, are bridged into one."""
        evidence = self.strongest_evidence()
        if threshold is None:
            return evidence >= np.quantile(evidence, 1.0 - contamination)
        flagged = evidence > threshold
        if not flagged.any() or not DISCORDS.intersection(self.evidence):
            return flagged
        pointwise, discords = self._core_evidence()
        discords = np.where(edge_runs(discords > threshold), -np.inf, discords)
        core = (pointwise > threshold) | (discords > threshold)
        strongest = np.maximum(pointwise, discords)
        out = np.zeros_like(flagged)
        for a, b in segments(flagged):
            if core[a:b].any():
                out[a:b] = bridged(core[a:b], STRIDE)
            else:
                peak = a + int(np.argmax(strongest[a:b]))
                out[max(a, peak - STRIDE) : min(b, peak + STRIDE + 1)] = True
        return out


def bridged(flags: np.ndarray, gap: int) -> np.ndarray:
    """``flags`` with each gap of at most ``gap`` steps between two runs filled: the discords
    are measured every ``STRIDE`` steps, so they cannot part two events closer than that."""
    out = flags.copy()
    runs = segments(flags)
    for (_, end), (start, _) in zip(runs[:-1], runs[1:], strict=True):
        if start - end <= gap:
            out[end:start] = True
    return out


def edge_runs(flags: np.ndarray) -> np.ndarray:
    """The runs of ``flags`` that reach the first or the last step."""
    out = np.zeros_like(flags)
    runs = segments(flags)
    for a, b in runs[:1] + runs[-1:]:
        out[a:b] = a == 0 or b == len(flags)
    return out


@dataclass
class Calibration:
    """What scoring learns from the training series: the error scale, the multi-scale
    levels (``None`` with ``smoothing="max"``), the discord profile (``None`` without
    discords), the training scores (concatenated, channels aggregated: the thresholds'
    basis), the raw training errors (``[T, C]`` per series), with ``discords="auto"`` the
    training data's relative contrast that decided (:func:`discords_wanted`), the
    shape-discord profile that joins the embedding discords (``None`` without discords),
    which channels were constant in every training series (``[C]`` bool, :func:`flat_channels`;
    they score at most the median training score, as missing steps do), and the spike
    component's profile (``None`` without it)."""

    scale: ErrorScale
    multi_scale: MultiScale | None
    discords: DiscordProfile | None
    train_scores: np.ndarray
    errors: list[np.ndarray]
    contrast: float | None = None
    shapes: ShapeProfile | None = None
    flat: np.ndarray | None = None
    spikes: SpikeProfile | None = None


def calibrate(network: TraceNetwork, series: list[np.ndarray], scoring: ScoreSettings) -> Calibration:
    """Calibrate ``network``'s scores on ``series`` (``[T, C]`` arrays). Any fitted network
    scores: a detector's, or a forecaster's adapted encoder with the pretrained
    reconstruction head."""
    errors = [scoring.errors(network, s) for s in series]
    return calibrate_errors(errors, series, network.spec.context_length, scoring)


def calibrate_errors(errors: list[np.ndarray], series: list[np.ndarray], context_length: int,
                     scoring: ScoreSettings, discord_distances: list[np.ndarray] | None = None,
                     references: list[tuple[np.ndarray, np.ndarray]] | None = None,
                     shape_distances: list[np.ndarray] | None = None) -> Calibration:
    """:func:`calibrate` from the training errors (``[T, C]`` per series); the discord
    profiles' training distances (and the embedding references with their positions,
    :func:`~trace_forecast.tasks.discord.reference_descriptors`) are computed from ``series``
    unless given."""
    flat = flat_channels(series) if series else np.zeros(errors[0].shape[1], bool)
    scale = ErrorScale.fit(errors, context_length)
    z = [scale.standardise(e) for e in errors]
    multi_scale = MultiScale.fit(z, scoring.score_window, scoring.smoothing) if scoring.smoothing != "max" else None
    per_channel = [anomaly_scores(t, scoring.score_window, component_wise=True, multi_scale=multi_scale) for t in z]
    wanted, contrast = discords_wanted(scoring.discords, [s[:, ~flat] for s in series])
    wanted = wanted and has_subsequences(series)
    discords = shapes = None
    if wanted and discord_distances is not None:
        indexes = [SubsequenceIndex.of([s[:, c] for s in series]) for c in range(series[0].shape[1])]
        discords, joined = DiscordProfile.from_training(references, discord_distances, per_channel,
                                                        scoring.discord_weight, scoring.discord_floor, indexes)
    elif wanted:
        discords, joined = DiscordProfile.fit(scoring.pretrained(), series, per_channel, scoring.discord_weight,
                                              scoring.discord_floor)
    if wanted and scoring.shape_weight > 0:
        # mapped against the reconstruction scores alone, as the embedding discord is
        shapes, with_shapes = ShapeProfile.fit(series, per_channel, scoring.shape_weight, scoring.discord_floor,
                                               shape_distances)
        joined = [np.maximum(a, b) for a, b in zip(joined, with_shapes, strict=True)]
    per_channel = joined if wanted else per_channel
    # never above the training scores it is mapped into, so the thresholds' basis is unchanged;
    # a flat channel has no notion of normal (as above)
    spikes = SpikeProfile.fit(series, per_channel, scoring.spikes, usable=~flat)
    return Calibration(scale, multi_scale, discords, np.concatenate([p[:, ~flat].max(axis=1) for p in per_channel]),
                       errors, contrast, shapes, flat, spikes)


def flat_channels(series: list[np.ndarray]) -> np.ndarray:
    """``[C]`` bool: the channels that hold one value in every training series (``[T, C]``
    arrays; missing steps aside). Such a channel teaches no normal variation: the score's
    units come from the training errors' spread, which is zero there, so the first noise in
    new data, however small, outscored any anomaly and flagged every step of every channel.
    It is left out of the score, as a missing step is. Every channel flat raises
    :class:`~trace_forecast.errors.DataError`."""
    values = np.concatenate(series)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-missing channel: NaN, not flat
        flat = np.nanmax(values, axis=0) == np.nanmin(values, axis=0)
    if flat.all():
        raise DataError("the anomaly detector's training data are constant in every channel: it learns normal "
                        "behaviour from the data's variation, and there is none")
    return flat


def has_subsequences(series: list[np.ndarray], least: int = 8) -> bool:
    """Whether the training series hold ``least`` discord-length subsequences: with fewer,
    the training distances have no spread to set a unit by, and a forced ``discords=True``
    on a short series scored new data at 10^12 units; discords then stay out."""
    return sum(max(0, len(s) - LENGTH + 1) for s in series) >= least


def discords_wanted(discords: bool | str, series: list[np.ndarray]) -> tuple[bool, float | None]:
    """Whether discords join the score, and the contrast that decided with ``"auto"``: the
    median over channels of the training series' :func:`relative_contrast`, at least
    ``MIN_CONTRAST`` (a NaN contrast, too little data to tell, is not)."""
    if discords != "auto":
        return bool(discords), None
    channels = series[0].shape[1] if series else 0
    contrast = float(np.median([relative_contrast([s[:, c] for s in series]) for c in range(channels)])
                     ) if channels else float("nan")
    return bool(contrast >= MIN_CONTRAST), contrast


def fit_anomaly_model(
    series: list[np.ndarray],
    backbone: MomentBackbone,
    spec: NetworkSpec,
    settings: TrainSettings,
    scoring: ScoreSettings,
    validation_fraction: float,
    max_windows: int | None,
    window_stride: int,
) -> tuple[FitResult, Calibration]:
    """Fine-tune masked reconstruction on ``series`` (``[T, C]`` arrays) with masks drawn
    from the score's family and only hidden steps in the loss (what the score measures),
    then :func:`calibrate`. Returns the fit and the calibration."""
    channels = [s[:, c] for s in series for c in range(s.shape[1])]
    masked = scoring.score != "unmasked"
    settings = replace(settings, mask_scheme=SCORES[scoring.score] if masked else None,
                       visible_weight=0.0 if masked else 1.0)
    result = fit_reconstruction(channels, backbone, spec, settings, validation_fraction, max_windows,
                                window_stride, min_context=1)
    return result, calibrate(result.network, series, scoring)
