"""TraceAnomalyDetector: masked-reconstruction fine-tuning as an sktime anomaly detector."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sktime.detection.base import BaseDetector

from trace_forecast.errors import DataError, ParameterError
from trace_forecast.estimators import conversion
from trace_forecast.estimators._common import adopt_fit, store_fit
from trace_forecast.estimators._frames import aligned, as_frame, check_frame
from trace_forecast.metrics import segments
from trace_forecast.parameters import default, document, validate
from trace_forecast.tasks.conditioning import channel_conditions, conditioned_channels
from trace_forecast.tasks.persistence import CompactNetworkState

if TYPE_CHECKING:  # the training engine (Lightning, transformers, PEFT) loads on the first fit
    from trace_forecast.tasks.anomaly import ScoreSettings, StepScores


@conversion.register("detector")
@document
class TraceAnomalyDetector(CompactNetworkState, BaseDetector):
    """Anomaly detection by what a TRACE-adapted MOMENT-style model could not reconstruct.

    ``fit`` fine-tunes masked-patch reconstruction on (mostly) normal data with the
    same gated LoRA adapters and Gated DSIC selection as the forecaster, hiding patches
    the way the score does and scoring only hidden steps. The score of a time step is
    the absolute error of the reconstructions in which it was *hidden* (``score``),
    averaged over the overlapping windows (every ``stride`` steps) that cover it,
    smoothed over ``score_window`` steps, and standardised per channel against the
    training errors (robust z-score: median and MAD); channels are aggregated by their
    maximum. Series of any length are scored, in batches of windows (bounded memory).

    Fine-tuning draws its masks from the score's family (``mask_ratio`` applies to
    ``score="unmasked"`` only).

    ``predict`` returns the flagged points; :meth:`predict_anomaly_segments` the runs
    of flagged points as intervals. The default ``threshold="auto"`` fits a tail model to
    the training scores, so normal data flags nothing with high probability (about
    ``risk`` per step); lower ``risk`` for fewer false alarms, raise it (or use
    ``threshold="contamination"``) to catch weaker anomalies. Fit on data taken as normal:
    the ``"auto"`` level lies above every training score, so scoring the data the detector
    was fitted on (``fit_transform``, ``fit_predict``) flags nothing there, however strong an
    anomaly it holds; to label a series' own anomalies, use ``threshold="contamination"``.

    Parameters
    ----------
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
    {parameter:context_length}
    {parameter:score}
    {parameter:stride}
    {parameter:score_window}
    {parameter:smoothing}
    {parameter:discords}
    {parameter:spikes}
    {parameter:mask_ratio}
    {parameter:multitask}
    {parameter:reconstruction_weight}
    {parameter:forecast_horizon}
    {parameter:max_epochs}
    {parameter:batch_size}
    {parameter:learning_rate}
    {parameter:validation_fraction}
    {parameter:max_windows}
    {parameter:window_stride}
    {parameter:threshold}
    {parameter:percentile}
    {parameter:contamination}
    {parameter:risk}
    {parameter:device}
    {parameter:trainer_kwargs}
    {parameter:checkpoint_dir}
    {parameter:checkpoint_every}
    {parameter:random_state}
    {parameter:verbose}

    Attributes
    ----------
    network_ : TraceNetwork
    train_scores_ : np.ndarray
        Scores of the training series (basis of the ``"auto"`` and percentile thresholds).
    train_errors_ : np.ndarray
        Raw hidden-step errors ``[T, C]`` of the training series (before standardisation).
    error_scale_ : ErrorScale
        Per-channel median and robust scale of the training errors.
    multi_scale_ : MultiScale or None
        The training levels of each smoothing span (``None`` with ``smoothing="max"``).
    discords_ : DiscordProfile or None
        The fitted embedding-discord score (``None`` where discords do not join the score).
    shape_discords_ : ShapeProfile or None
        The fitted shape-discord score, z-normalised subsequences against dense neighbours
        (with the embedding discords).
    discord_contrast_ : float or None
        With ``discords="auto"``, the training data's relative contrast that decided:
        discords join the score at 2.5 or more (``None`` with ``discords`` True or False).
    spike_profile_ : SpikeProfile or None
        The point-spike component's calibration (``spikes``; ``None`` where it does not join
        the score), with the channels it scores in ``active``.
    flat_channels_ : list
        The columns that held one value throughout the training data: they teach no normal
        variation and are left out of the score (every column flat raises ``DataError``).
    threshold_ : float or None
        Fitted threshold (``None`` for the contamination rule).
    trainable_parameters_ : dict
    selected_modules_, selection_history_ : pd.DataFrame
        Gated DSIC's final selection and its rounds (as for :class:`TraceForecaster`).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from trace_forecast import TraceAnomalyDetector
    >>> t = np.arange(400)
    >>> x = pd.DataFrame({"x": np.sin(t / 8)})
    >>> x.iloc[300:305] += 3.0
    >>> detector = TraceAnomalyDetector(context_length=64, max_epochs=1, random_state=0)
    >>> detector = detector.fit(x.iloc[:250])
    >>> scores = detector.transform_scores(x)
    >>> len(scores) == len(x)
    True
    """

    _tags = {
        "authors": ["trace_forecast developers"],
        "maintainers": ["trace_forecast developers"],
        "python_dependencies": ["torch", "transformers", "pytorch-lightning", "safetensors", "huggingface-hub", "peft"],
        "task": "anomaly_detection",
        "learning_type": "unsupervised",
        "capability:multivariate": True,
        "capability:missing_values": True,
        "fit_is_empty": False,
        "X_inner_mtype": "pd.DataFrame",
        "capability:random_state": True,
        "property:randomness": "derandomized",
    }

    def __init__(
        self,
        backbone=default("backbone"),
        adapter=default("adapter"),
        lora_rank=default("lora_rank"),
        lora_targets=default("lora_targets"),
        dsic_budget=default("dsic_budget"),
        dsic_interval=default("dsic_interval"),
        dsic_draws=default("dsic_draws"),
        dsic_rule=default("dsic_rule"),
        dsic_warmup=default("dsic_warmup"),
        dsic_final=default("dsic_final"),
        context_length=default("context_length"),
        score=default("score"),
        stride=default("stride"),
        score_window=default("score_window"),
        smoothing=default("smoothing"),
        discords=default("discords"),
        spikes=default("spikes"),
        mask_ratio=default("mask_ratio"),
        multitask=default("multitask"),
        reconstruction_weight=default("reconstruction_weight"),
        forecast_horizon=default("forecast_horizon"),
        max_epochs=default("max_epochs"),
        batch_size=default("batch_size"),
        learning_rate=default("learning_rate"),
        validation_fraction=default("validation_fraction"),
        max_windows=default("max_windows"),
        window_stride=default("window_stride"),
        threshold=default("threshold"),
        percentile=default("percentile"),
        contamination=default("contamination"),
        risk=default("risk"),
        device=default("device"),
        trainer_kwargs=default("trainer_kwargs"),
        checkpoint_dir=default("checkpoint_dir"),
        checkpoint_every=default("checkpoint_every"),
        random_state=default("random_state"),
        verbose=default("verbose"),
    ):
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
        self.context_length = context_length
        self.score = score
        self.stride = stride
        self.score_window = score_window
        self.smoothing = smoothing
        self.discords = discords
        self.spikes = spikes
        self.mask_ratio = mask_ratio
        self.multitask = multitask
        self.reconstruction_weight = reconstruction_weight
        self.forecast_horizon = forecast_horizon
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.max_windows = max_windows
        self.window_stride = window_stride
        self.threshold = threshold
        self.percentile = percentile
        self.contamination = contamination
        self.risk = risk
        self.device = device
        self.trainer_kwargs = trainer_kwargs
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.random_state = random_state
        self.verbose = verbose
        super().__init__()

    def _check_params(self) -> None:
        """Every parameter's rule, before any data or backbone is touched."""
        validate(self.get_params(deep=False))
        if self.multitask and self.forecast_horizon is None:
            raise ParameterError("multitask=True trains a forecasting head too: give forecast_horizon, the steps "
                                 "ahead it predicts")

    def _scoring(self) -> ScoreSettings:
        from trace_forecast.tasks.anomaly import ScoreSettings

        return ScoreSettings.from_params(self.score, self.stride, self.score_window, self.context_length,
                                         self.device, self.discords, self.backbone, self.smoothing, self.spikes)

    def _values(self, X, fitting: bool = False) -> np.ndarray:
        """``X`` as the network sees it, a float32 ``[T, C]`` array: checked, in the fitted
        columns' order (:func:`~trace_forecast.estimators._frames.aligned`) and brought into
        range as the training data were (:mod:`~trace_forecast.tasks.conditioning`);
        ``fitting`` takes the columns and the conditioning from ``X``."""
        X = as_frame(X)
        check_frame(X, "X")
        if not fitting:
            X = aligned(X, self.columns_, "X", "the detector was fitted on")
        values = X.to_numpy(dtype=np.float64)
        if fitting:
            self._conditions = channel_conditions([values])
        return conditioned_channels(values, getattr(self, "_conditions", None))  # older pickles: none

    def _backbone(self):
        """The pretrained backbone, checked against ``context_length``."""
        from trace_forecast.tasks.setup import backbone_for

        return backbone_for(self.backbone, self.context_length)

    def _fit(self, X, y=None):
        from trace_forecast.tasks.anomaly import calibrate, fit_anomaly_model
        from trace_forecast.tasks.scoring import tail_threshold
        from trace_forecast.tasks.setup import network_spec, train_settings

        self._check_params()
        X = as_frame(X)
        # sktime's update() combines new data with _X, which its fit() left as the caller's
        # input: a pd.Series there cannot take a frame's combine_first, so keep the inner frame.
        self._X = X
        values = self._values(X, fitting=True)  # a refit may bring other columns
        self.columns_ = list(X.columns)
        adopted = self.__dict__.pop("_adopted__fit", None)
        calibration = None                            # the single-task fit calibrates as it trains
        if adopted is not None:                       # TraceForecaster.to_detector: no training
            adopt_fit(self, adopted)
            if adopted.get("residuals") is not None:  # its forecasting head stays usable
                self.forecast_residuals_ = adopted["residuals"]
                self._X_fit = X.copy()
        elif self.multitask:
            self._fit_jointly(X, values)
        else:
            backbone = self._backbone()
            spec = network_spec("reconstruction", backbone.patch_len, **self.get_params(deep=False))
            settings = train_settings(vars(self), mask_ratio=self.mask_ratio)
            result, calibration = fit_anomaly_model([values], backbone, spec, settings, self._scoring(),
                                                    self.validation_fraction, self.max_windows, self.window_stride)
            store_fit(self, result)
        if calibration is None:
            calibration = calibrate(self.network_, [values], self._scoring())
        self.error_scale_, self.multi_scale_, self.discords_ = (calibration.scale, calibration.multi_scale,
                                                                calibration.discords)
        self.discord_contrast_, self.shape_discords_ = calibration.contrast, calibration.shapes
        self.spike_profile_ = calibration.spikes
        self.flat_channels_ = [c for c, flat in zip(self.columns_, calibration.flat, strict=True) if flat]
        self.train_scores_, (self.train_errors_,) = calibration.train_scores, calibration.errors
        if self.threshold == "auto":
            self.threshold_ = tail_threshold(self.train_scores_, self.risk)
        elif self.threshold == "percentile":
            self.threshold_ = float(np.percentile(self.train_scores_, self.percentile))
        elif self.threshold == "contamination":
            self.threshold_ = None
        else:
            self.threshold_ = float(self.threshold)
        return self

    def _fit_jointly(self, X: pd.DataFrame, values: np.ndarray) -> None:
        """TRACE's multi-task fit: forecasting ``forecast_horizon`` steps ahead plus masked
        reconstruction (the score's masks), one set of adapters; the same objective and
        engine as ``TraceForecaster(multitask=True)``."""
        from trace_forecast.tasks.forecast import fit_forecast, learnable_context
        from trace_forecast.tasks.setup import network_spec, train_settings

        series = [values[:, c] for c in range(values.shape[1])]
        horizon = self.forecast_horizon
        min_context = learnable_context(series, horizon, "X")
        backbone = self._backbone()
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k in ("context_length", "adapter", "lora_rank", "lora_targets")}  # the head's other settings: defaults
        spec = network_spec("forecast", backbone.patch_len, horizon, **params)
        fit = fit_forecast(series, backbone, spec, train_settings(vars(self), mask_ratio=self.mask_ratio),
                           validation_fraction=self.validation_fraction, max_windows=self.max_windows,
                           stride=self.window_stride, min_context=min_context)
        store_fit(self, fit.result)
        self.forecast_residuals_ = fit.residuals
        self._X_fit = X.copy()

    def save_adapters(self, folder) -> Path:
        """Write the fitted adapters, gates and heads (and, after a multi-task fit, the
        forecast calibration) to ``folder``: a JSON config and ``safetensors`` tensors that
        :meth:`load_adapters` reads onto the same backbone (``docs/user_guide.md``,
        "Adapters as files"). The score's calibration is not saved: it is redone on the
        data given to the next ``fit``."""
        return conversion.save_adapters(self, folder, getattr(self, "forecast_residuals_", None))

    @classmethod
    def load_adapters(cls, folder, **params) -> TraceAnomalyDetector:
        """An unfitted detector that scores with the adapters saved in ``folder`` (by a
        detector, or a forecaster: its network scores as :meth:`TraceForecaster.to_detector`'s
        does). Its next ``fit(X)`` trains nothing: it calibrates the score's scale and
        threshold on ``X``. ``params`` override the folder's parameters; a damaged folder, a
        newer format or a different backbone raises
        :class:`~trace_forecast.errors.AdapterFileError`."""
        return conversion.from_adapters(cls, folder, params)

    def to_forecaster(self):
        """A fitted :class:`~trace_forecast.TraceForecaster` that forecasts with this
        detector's network -- no second fit. Needs a detector fitted with
        ``multitask=True`` (its forecasting head predicts ``forecast_horizon`` steps); the
        forecaster's history is the data the detector was fitted on, its intervals come
        from the same validation windows, and ``update`` continues from there."""
        return conversion.to_forecaster(self)

    def _calibration(self):
        from trace_forecast.tasks.anomaly import Calibration

        flat = np.array([c in getattr(self, "flat_channels_", ()) for c in self.columns_])  # older pickles: none
        return Calibration(self.error_scale_, self.multi_scale_, self.discords_, self.train_scores_,
                           [self.train_errors_], self.discord_contrast_, self.shape_discords_, flat,
                           getattr(self, "spike_profile_", None))  # older pickles: none

    def _step_scores(self, X: pd.DataFrame) -> StepScores:
        """The scored steps of ``X`` (:class:`~trace_forecast.tasks.anomaly.StepScores`)."""
        return self._scoring().step_scores(self.network_, self._calibration(), self._values(X))

    def score_components(self, X) -> pd.DataFrame:
        """What makes up each step's score: one column per component, in the score's units,
        indexed like ``X`` -- the reconstruction score at each smoothing span
        (``"reconstruction, 8-step span"``, ...) and, where discords join the score,
        ``"discord"`` and ``"shape discord"``. A step's score (``transform_scores``) is the largest of its row; the column that
        reaches it is the component that flagged the step."""
        self.check_is_fitted()
        X = as_frame(self._check_X(X))
        return pd.DataFrame(self._step_scores(X).components(), index=X.index)

    def _check_X(self, X):
        """sktime's input check, after a specific error for a panel: sktime's detectors take
        panels by scitype, then fail converting them with a ``TypeError`` about mtypes."""
        if isinstance(X, pd.DataFrame) and isinstance(X.index, pd.MultiIndex):
            raise DataError("TraceAnomalyDetector scores one series (its channels as columns), not a panel: fit one "
                            "detector per instance, e.g. {key: TraceAnomalyDetector().fit(x.droplevel(0)) for key, x "
                            "in X.groupby(level=0)}")
        return super()._check_X(X)

    def _transform_scores(self, X):
        return pd.DataFrame({"scores": self._step_scores(X).scores()}, index=as_frame(X).index)

    def _flags(self, steps: StepScores) -> np.ndarray:
        """Flagged steps: those whose own evidence crosses the threshold (the score's
        smoothing and the discords' subsequences spread an anomaly over its surroundings;
        the labels do not: :meth:`StepScores.flags`)."""
        return steps.flags(self.threshold_, self.contamination)

    def _predict_scores(self, X):
        steps = self._step_scores(X)
        return pd.Series(steps.scores()[self._flags(steps)], dtype=float)

    def _predict(self, X):
        return pd.Series(np.flatnonzero(self._flags(self._step_scores(X))), dtype="int64")

    def predict_anomaly_segments(self, X) -> pd.DataFrame:
        """Runs of flagged points: one row per anomalous segment, ``"ilocs"`` a
        left-closed ``pd.Interval`` of ``iloc`` positions (sktime's segment convention),
        ``"score"`` the segment's largest score and ``"component"`` the score component
        that reaches it (a column of :meth:`score_components`)."""
        self.check_is_fitted()
        steps = self._step_scores(as_frame(self._check_X(X)))
        parts = steps.components()
        names, stacked = list(parts), np.stack(list(parts.values()))
        scores = stacked.max(axis=0)
        runs = segments(self._flags(steps))
        peaks = [a + int(np.argmax(scores[a:b])) for a, b in runs]
        return pd.DataFrame({
            "ilocs": pd.IntervalIndex.from_tuples(runs, closed="left") if runs else pd.IntervalIndex([], closed="left"),
            "score": [float(scores[p]) for p in peaks],
            "component": pd.Series([names[int(np.argmax(stacked[:, p]))] for p in peaks], dtype=object),
        })

    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Tiny configurations that fit in about a second on a CPU."""
        fast = {"context_length": 32, "max_epochs": 1, "max_windows": 32, "batch_size": 16, "random_state": 0}
        return [
            {**fast, "dsic_interval": 1, "dsic_draws": 2},
            {**fast, "adapter": "none", "score": "unmasked", "score_window": 1, "threshold": "contamination",
             "contamination": 0.05},
            {**fast, "adapter": "none", "score": "forecast", "threshold": "percentile"},
        ]
