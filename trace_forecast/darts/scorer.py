"""TRACE's reconstruction anomaly scorer for ``darts.ad``."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from darts import TimeSeries
from darts.ad.scorers.scorers import FittableAnomalyScorer

from trace_forecast.darts.validation import check_series
from trace_forecast.parameter_count import parameter_report
from trace_forecast.parameters import boolean, default, document, validate
from trace_forecast.tasks.anomaly import ScoreSettings, calibrate, fit_anomaly_model
from trace_forecast.tasks.conditioning import channel_conditions, conditioned_channels
from trace_forecast.tasks.setup import (
    backbone_for,
    fitted_attributes,
    network_spec,
    train_settings,
)


@document
class TraceAnomalyScorer(FittableAnomalyScorer):
    """Masked-reconstruction anomaly scorer on a TRACE-adapted MOMENT-style backbone.

    ``fit(series)`` fine-tunes the backbone's masked reconstruction on (mostly normal)
    series with gated LoRA modules selected by Gated DSIC (or another ``adapter``;
    ``adapter="none"`` scores zero-shot), hiding patches the way the score does.
    ``score(series)`` returns, for every time step, the error of the reconstructions in
    which the step was hidden (``scoring``), averaged over the overlapping windows
    (``stride`` apart) that cover it, smoothed over ``score_window`` steps and
    standardised per component against the training errors (robust z-score); the
    components are aggregated by their maximum unless ``component_wise``. The code and
    defaults are those of the sktime ``TraceAnomalyDetector``, so both give identical
    scores. Series of any length work; windows are streamed in batches. Fine-tuning
    draws its masks from the score's family (``mask_ratio`` applies to
    ``scoring="unmasked"`` only). The score is already point-wise, so Darts' window
    aggregation is not used (``window=1``).

    Parameters
    ----------
    {parameter:context_length}
    {parameter:score as scoring}
    {parameter:stride}
    {parameter:score_window}
    {parameter:smoothing}
    {parameter:discords}
    {parameter:spikes}
    component_wise : bool, default=False
        ``False``: one score series, the maximum of the components' standardised scores;
        ``True``: one score per component.
    {parameter:backbone}
    {parameter:adapter}
    {parameter:lora_rank}
    {parameter:lora_targets}
    {parameter:dsic_budget}
    {parameter:dsic_interval}
    {parameter:dsic_draws}
    {parameter:dsic_rule}
    {parameter:dsic_warmup}
    {parameter:dsic_final}
    {parameter:mask_ratio}
    {parameter:max_epochs}
    {parameter:batch_size}
    {parameter:learning_rate}
    {parameter:validation_fraction}
    {parameter:max_windows}
    {parameter:window_stride}
    {parameter:device}
    {parameter:trainer_kwargs}
    {parameter:random_state}
    {parameter:verbose}

    Examples
    --------
    >>> import numpy as np
    >>> from darts import TimeSeries
    >>> from darts.ad import QuantileDetector
    >>> from trace_forecast.darts import TraceAnomalyScorer
    >>> t = np.arange(800, dtype="float32")
    >>> rng = np.random.default_rng(0)
    >>> normal = TimeSeries.from_values(np.sin(t / 8) + 0.05 * rng.standard_normal(800, dtype="float32"))
    >>> values = np.sin(t / 8) + 0.05 * rng.standard_normal(800, dtype="float32")
    >>> values[500] += 4.0  # a planted spike
    >>> test = TimeSeries.from_values(values)
    >>> scorer = TraceAnomalyScorer(context_length=64, max_epochs=1, max_windows=64, random_state=0)
    >>> scores = scorer.fit(normal).score(test)
    >>> abs(int(np.argmax(scores.values())) - 500) < 32  # the top score is at the spike
    True
    >>> flags = QuantileDetector(high_quantile=0.999).fit(scorer.score(normal)).detect(scores)
    >>> bool(flags.values()[500, 0])
    True
    """

    def __init__(
        self,
        context_length: int = default("context_length"),
        scoring: str = default("score"),
        stride: int | None = default("stride"),
        score_window: int = default("score_window"),
        smoothing: str = default("smoothing"),
        discords: bool | str = default("discords"),
        spikes: bool | str = default("spikes"),
        component_wise: bool = False,
        backbone: str | None = default("backbone"),
        adapter: str = default("adapter"),
        lora_rank: int = default("lora_rank"),
        lora_targets: Sequence[str] | None = default("lora_targets"),
        dsic_budget: float = default("dsic_budget"),
        dsic_interval: int = default("dsic_interval"),
        dsic_draws: int = default("dsic_draws"),
        dsic_rule: str = default("dsic_rule"),
        dsic_warmup: float = default("dsic_warmup"),
        dsic_final: float = default("dsic_final"),
        mask_ratio: float = default("mask_ratio"),
        max_epochs: int = default("max_epochs"),
        batch_size: int = default("batch_size"),
        learning_rate: float = default("learning_rate"),
        validation_fraction: float = default("validation_fraction"),
        max_windows: int | None = default("max_windows"),
        window_stride: int = default("window_stride"),
        device: str = default("device"),
        trainer_kwargs: dict | None = default("trainer_kwargs"),
        random_state: int | None = default("random_state"),
        verbose: bool = default("verbose"),
    ) -> None:
        validate(locals())  # every argument (unregistered names are ignored)
        boolean("component_wise", component_wise)
        super().__init__(is_univariate=not component_wise, window=1, window_agg=False)
        self.context_length = context_length
        self.scoring = scoring
        self.stride = stride
        self.score_window = score_window
        self.smoothing = smoothing
        self.discords = discords
        self.spikes = spikes
        self.component_wise = component_wise
        self.backbone = backbone
        self.adapter = adapter
        self.lora_rank = lora_rank
        self.lora_targets = lora_targets
        self.dsic_budget = dsic_budget
        self.dsic_interval = dsic_interval
        self.dsic_draws = dsic_draws
        self.dsic_rule = dsic_rule
        self.dsic_warmup = dsic_warmup
        self.dsic_final = dsic_final
        self.mask_ratio = mask_ratio
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.max_windows = max_windows
        self.window_stride = window_stride
        self.device = device
        self.trainer_kwargs = trainer_kwargs
        self.random_state = random_state
        self.verbose = verbose
        self.network_ = None

    def __str__(self) -> str:
        return "TraceAnomalyScorer"

    def _fit_core(self, series: Sequence[TimeSeries], *args, **kwargs) -> None:
        check_series(list(series), "series", 1)
        raw = [s.values(copy=False) for s in series]
        self._conditions = channel_conditions(raw)  # brought into range (tasks.conditioning), as scored data will be
        arrays = [conditioned_channels(a, self._conditions) for a in raw]
        adopted = self.__dict__.pop("_adopted_network", None)
        if adopted is not None:  # TraceModel.to_anomaly_scorer: calibrate the model's network, train nothing
            self.network_ = adopted
            self.calibration_ = calibrate(adopted, arrays, self._scoring())
            self.train_scores_ = self.calibration_.train_scores
            self.trainable_parameters_ = dict(parameter_report(adopted))
            self.selected_modules_, self.selection_history_, self.train_loss_, self.val_loss_ = [], None, [], []
            return
        backbone = backbone_for(self.backbone, self.context_length)
        spec = network_spec("reconstruction", backbone.patch_len, context_length=self.context_length,
                            adapter=self.adapter, lora_rank=self.lora_rank, lora_targets=self.lora_targets)
        result, self.calibration_ = fit_anomaly_model(
            arrays,
            backbone,
            spec,
            train_settings(vars(self), mask_ratio=self.mask_ratio),
            self._scoring(),
            self.validation_fraction,
            self.max_windows,
            self.window_stride,
        )
        for name, value in fitted_attributes(result).items():
            setattr(self, name, value)
        self.selected_modules_ = list(result.selection)  # the scorer's records (the estimators': a frame)
        self.train_scores_ = self.calibration_.train_scores

    def _score_core(self, series: Sequence[TimeSeries], *args, **kwargs) -> Sequence[TimeSeries]:
        check_series(list(series), "series", 1)
        scoring = self._scoring()
        out = []
        for s in series:
            scores = scoring.scores(self.network_, self.calibration_, self._values(s), self.component_wise)
            scores = scores if self.component_wise else scores[:, None]
            out.append(TimeSeries.from_times_and_values(s.time_index, scores))
        return out

    def score_components(self, series: TimeSeries) -> TimeSeries:
        """What makes up each step's score: one component per score component, in the score's
        units, on ``series``' time index -- the reconstruction score at each smoothing span
        (``"reconstruction, 8-step span"``, ...) and, where discords join the score, ``"discord"``
        and ``"shape discord"``;
        channels by their maximum. A step's score (``score`` with ``component_wise=False``)
        is the largest of its row; the component that reaches it flagged the step."""
        self._check_fit_called()
        check_series([series], "series", 1)
        parts = self._scoring().components(self.network_, self.calibration_, self._values(series))
        return TimeSeries.from_times_and_values(series.time_index, np.stack(list(parts.values()), axis=1),
                                                columns=list(parts))

    def _values(self, series: TimeSeries) -> np.ndarray:
        """``series``' values ``[T, C]`` as float32, checked against the fitted width."""
        if series.width != self.width_trained_on:
            raise ValueError(f"series has {series.width} components but the scorer was fitted on "
                             f"{self.width_trained_on}")
        return conditioned_channels(series.values(copy=False), getattr(self, "_conditions", None))  # older pickles

    def _scoring(self) -> ScoreSettings:
        return ScoreSettings.from_params(self.scoring, self.stride, self.score_window, self.context_length,
                                         self.device, self.discords, self.backbone, self.smoothing,
                                         getattr(self, "spikes", False))  # older pickles: none

    def trainable_parameters(self) -> int:
        """Trainable parameters of the fine-tuned network (0 before ``fit``)."""
        return 0 if self.network_ is None else int(parameter_report(self.network_)["total_trainable"])
