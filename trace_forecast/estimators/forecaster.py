"""TraceForecaster: TRACE fine-tuning of a MOMENT-style backbone as an sktime forecaster."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sktime.forecasting.base import BaseForecaster, ForecastingHorizon

from trace_forecast.errors import DataError
from trace_forecast.estimators import conversion
from trace_forecast.estimators._common import adopt_fit, store_fit
from trace_forecast.estimators._frames import aligned, assemble, channels, check_frame, instances, time_frequency
from trace_forecast.parameters import default, document, validate
from trace_forecast.tasks.conditioning import Conditioning, conditioned, restored
from trace_forecast.tasks.persistence import CompactNetworkState

if TYPE_CHECKING:  # the training engine (Lightning, transformers, PEFT) loads on the first fit
    from trace_forecast.engine import TrainSettings
    from trace_forecast.tasks.forecast import ForecastFit



@conversion.register("forecaster")
@document
class TraceForecaster(CompactNetworkState, BaseForecaster):
    """Forecast by TRACE fine-tuning of a pretrained MOMENT-style foundation model.

    Gated LoRA modules on the encoder's linear layers are selected by Gated DSIC
    (Monte-Carlo gate masking on validation windows), and the forecast comes from the
    pretrained reconstruction head plus a tiny temporal map. Channels are modelled
    independently; panel and hierarchical data are fitted globally (one model for all
    series). Prediction intervals are normalised split-conformal: empirical quantiles of
    out-of-sample residuals per horizon step, in each window's RevIN scale and each
    series' own difficulty scale, calibrated online (validation windows at ``fit``; each
    ``update`` adds the windows it completes).

    Pickles and ``save`` files hold the adapter and head only; loading rebuilds the
    network from the same ``backbone`` checkpoint.

    Parameters
    ----------
    {parameter:backbone}
    {parameter:adapter}
    {parameter:head}
    {parameter:lora_rank}
    {parameter:lora_targets}
    {parameter:dsic_budget}
    {parameter:dsic_interval}
    {parameter:dsic_draws}
    {parameter:dsic_rule}
    {parameter:dsic_warmup}
    {parameter:dsic_final}
    {parameter:temporal_map}
    {parameter:future_patches}
    {parameter:head_init}
    {parameter:fit_strategy}
    {parameter:context_length}
    {parameter:max_epochs}
    {parameter:batch_size}
    {parameter:learning_rate}
    {parameter:validation_fraction}
    {parameter:max_windows}
    {parameter:window_stride}
    {parameter:multitask}
    {parameter:reconstruction_weight}
    {parameter:update_epochs}
    {parameter:device}
    {parameter:trainer_kwargs}
    {parameter:checkpoint_dir}
    {parameter:checkpoint_every}
    {parameter:random_state}
    {parameter:verbose}

    Attributes
    ----------
    network_ : TraceNetwork
        The adapted model.
    trainable_parameters_ : dict
        Trainable parameters per component (``adapter_trainable``, ``gates_trainable``,
        ``head_trainable``, ``backbone_trainable``) and ``total_trainable``.
    selected_modules_ : pd.DataFrame
        Gated DSIC's modules with ``kept``, ``importance`` and ``gate`` (gated_dsic only).
    selection_history_ : pd.DataFrame
        Gated DSIC's selection rounds, one row per (round, module): ``step``, ``module``,
        ``importance``, ``kept``, ``final`` (what :func:`~trace_forecast.plotting.plot_adapter_selection` draws).
    train_loss_, val_loss_ : list of float
        Loss per epoch.

    Examples
    --------
    >>> from sktime.datasets import load_airline
    >>> from trace_forecast import TraceForecaster
    >>> y = load_airline()
    >>> forecaster = TraceForecaster(context_length=64, max_epochs=1, random_state=0)
    >>> forecaster.fit(y, fh=[1, 2, 3])  # doctest: +ELLIPSIS
    TraceForecaster(...)
    >>> y_pred = forecaster.predict()
    >>> forecaster.get_fitted_params()["total_trainable"] > 0
    True
    """

    _tags = {
        "authors": ["trace_forecast developers"],
        "maintainers": ["trace_forecast developers"],
        "python_dependencies": ["torch", "transformers", "pytorch-lightning", "safetensors", "huggingface-hub", "peft"],
        "y_inner_mtype": ["pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "X_inner_mtype": ["pd.DataFrame", "pd-multiindex", "pd_multiindex_hier"],
        "scitype:y": "both",
        "capability:multivariate": True,
        "capability:exogenous": True,
        "capability:missing_values": True,
        "capability:insample": False,
        "capability:pred_int": True,
        "capability:pred_int:insample": False,
        "capability:pretrain": True,
        "capability:random_state": True,
        "property:randomness": "derandomized",
        "requires-fh-in-fit": True,
        "fit_is_empty": False,
        "capability:update": True,
    }
    # The forecaster keeps its own history (``_history``): contexts for predict and
    # data for update_params=True, whatever sktime's remember_data default becomes.
    _config = {**BaseForecaster._config, "remember_data": False}

    def __init__(
        self,
        backbone=default("backbone"),
        adapter=default("adapter"),
        head=default("head"),
        lora_rank=default("lora_rank"),
        lora_targets=default("lora_targets"),
        dsic_budget=default("dsic_budget"),
        dsic_interval=default("dsic_interval"),
        dsic_draws=default("dsic_draws"),
        dsic_rule=default("dsic_rule"),
        dsic_warmup=default("dsic_warmup"),
        dsic_final=default("dsic_final"),
        temporal_map=default("temporal_map"),
        future_patches=default("future_patches"),
        head_init=default("head_init"),
        fit_strategy=default("fit_strategy"),
        context_length=default("context_length"),
        max_epochs=default("max_epochs"),
        batch_size=default("batch_size"),
        learning_rate=default("learning_rate"),
        validation_fraction=default("validation_fraction"),
        max_windows=default("max_windows"),
        window_stride=default("window_stride"),
        multitask=default("multitask"),
        reconstruction_weight=default("reconstruction_weight"),
        update_epochs=default("update_epochs"),
        device=default("device"),
        trainer_kwargs=default("trainer_kwargs"),
        checkpoint_dir=default("checkpoint_dir"),
        checkpoint_every=default("checkpoint_every"),
        random_state=default("random_state"),
        verbose=default("verbose"),
    ):
        self.backbone = backbone
        self.adapter = adapter
        self.head = head
        self.lora_rank = lora_rank
        self.lora_targets = lora_targets
        self.dsic_budget = dsic_budget
        self.dsic_interval = dsic_interval
        self.dsic_draws = dsic_draws
        self.dsic_rule = dsic_rule
        self.dsic_warmup = dsic_warmup
        self.dsic_final = dsic_final
        self.temporal_map = temporal_map
        self.future_patches = future_patches
        self.head_init = head_init
        self.fit_strategy = fit_strategy
        self.context_length = context_length
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.max_windows = max_windows
        self.window_stride = window_stride
        self.multitask = multitask
        self.reconstruction_weight = reconstruction_weight
        self.update_epochs = update_epochs
        self.device = device
        self.trainer_kwargs = trainer_kwargs
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.random_state = random_state
        self.verbose = verbose
        super().__init__()
        if not hasattr(self, "_y"):  # sktime sets these only when remember_data is on
            self._y = None
            self._X = None

    # ------------------------------------------------------------------ helpers
    def _settings(self, max_epochs: int | None = None) -> TrainSettings:
        from trace_forecast.tasks.setup import train_settings

        return train_settings(vars(self), max_epochs=self.max_epochs if max_epochs is None else max_epochs)

    def _placed_cutoff(self, cutoff: pd.Index | None = None) -> pd.Index:
        """sktime's cutoff (or ``cutoff``), with the history's frequency (``_freq``, read when
        the history is stored) where it has none: a panel's time level loses its ``freq`` in
        ``pd.concat`` or ``MultiIndex.from_tuples``, and sktime then cannot place a
        forecast's time stamps."""
        cutoff = self.cutoff if cutoff is None else cutoff
        freq = getattr(self, "_freq", None)  # older pickles: sktime's cutoff
        if isinstance(cutoff, pd.DatetimeIndex) and cutoff.freq is None and freq is not None:
            cutoff = pd.DatetimeIndex(cutoff, freq=freq)
        return cutoff

    def _future_index(self, fh: ForecastingHorizon) -> pd.Index:
        """``fh``'s time stamps."""
        return fh.to_absolute_index(self._placed_cutoff())

    def _future_indexes(self, fh: ForecastingHorizon) -> list[pd.Index]:
        """``fh``'s time stamps for each instance of the history, counted from the instance's
        own last time stamp, as sktime's per-instance forecasters count them: in a panel
        whose instances end at different times, a shorter one's forecasts follow its own
        data (they were stamped after the panel's last time stamp)."""
        common = self._future_index(fh)
        index = self._history.index
        if not isinstance(index, pd.MultiIndex):
            return [common]
        keys = list(range(index.nlevels - 1))
        ends = pd.Series(index.get_level_values(-1), index=index.droplevel(-1)).groupby(level=keys, sort=False).max()
        cutoff = self._placed_cutoff()
        short = ends.index[ends.to_numpy() != cutoff[0]]
        if len(short) == 0:  # every instance ends at the cutoff
            return [common] * len(ends)
        if not fh.is_relative:
            raise DataError(f"fh holds time stamps, but instance(s) {list(short[:5])} end before the panel's last time "
                            f"stamp ({cutoff[0]}), so a stamp is a different step ahead for each instance; give fh as "
                            "steps ahead (relative), which count from each instance's own last time stamp")
        steps = ForecastingHorizon(self._horizon(fh), is_relative=True)
        return [common if end == cutoff[0] else steps.to_absolute_index(self._placed_cutoff(pd.Index([end])))
                for end in ends]

    def _horizon(self, fh: ForecastingHorizon) -> np.ndarray:
        steps = np.asarray(fh.to_relative(self._placed_cutoff()), dtype=int)
        if len(steps) == 0:
            raise ValueError("fh is empty")
        if (steps < 1).any():
            raise ValueError(
                f"TraceForecaster forecasts out of sample only: fh steps must be >= 1, got {sorted(steps.tolist())}"
            )
        return steps

    def _series(self, y: pd.DataFrame) -> tuple[list[tuple], list[np.ndarray]]:
        check_frame(y, "y")
        keys, series, _ = self._split(y)
        return keys, series

    @staticmethod
    def _split(y: pd.DataFrame) -> tuple[list[tuple], list[np.ndarray], list[Conditioning]]:
        """Instance keys, univariate channels of already validated data as the network sees
        them (float32, brought into range: :mod:`~trace_forecast.tasks.conditioning`),
        and how each was brought there."""
        parts = instances(y)
        series, conditions = conditioned(channels([f for _, f in parts]))
        return [k for k, _ in parts], series, conditions

    def _check_params(self) -> None:
        """Every parameter's rule, before any data or backbone is touched."""
        validate(self.get_params(deep=False))

    def _fit_series(self, series: list[np.ndarray], horizon: int, init=None, max_epochs=None) -> ForecastFit:
        from trace_forecast.tasks.forecast import fit_forecast, learnable_context
        from trace_forecast.tasks.setup import backbone_for, network_spec

        min_context = learnable_context(series, horizon, "y", zero_shot=self.fit_strategy == "zero-shot",
                                        zero_shot_option='fit_strategy="zero-shot"')
        backbone = backbone_for(self.backbone, self.context_length)
        return fit_forecast(
            series,
            backbone,
            network_spec("forecast", backbone.patch_len, horizon, **self.get_params(deep=False)),
            self._settings(max_epochs),
            validation_fraction=self.validation_fraction,
            max_windows=self.max_windows,
            stride=self.window_stride,
            min_context=min_context,
            init=init,
            head_init=self.head_init,
            fit_strategy=self.fit_strategy,
        )

    # ------------------------------------------------------------------ covariates
    def _covariates(self, X: pd.DataFrame, index_of: dict) -> list[np.ndarray]:
        """``X`` as one ``[T, K]`` array per target series (each channel of an instance reads
        its instance's covariates), on the rows ``index_of[key]`` of each instance of ``y``
        (in ``y``'s order)."""
        check_frame(X, "X", covariates=True)
        frames = dict(instances(X))
        out = []
        for key, index in index_of.items():
            if key not in frames:
                raise DataError(f"X has no rows for instance {key!r} of y")
            out += [frames[key].reindex(index).to_numpy(dtype=np.float64)] * len(self._columns)
        return out

    def _aligned_covariates(self, X: pd.DataFrame) -> pd.DataFrame:
        """New rows of ``X`` with the fitted covariates' columns, in their order (:func:`aligned`)."""
        return aligned(X, list(self._X_history.columns), "X", "the forecaster was fitted on covariates")

    def _fit_covariates(self, X: pd.DataFrame | None, series: list[np.ndarray]) -> None:
        """The covariate head on the fitted network's residuals (``None`` without ``X``)."""
        self.covariate_map_ = None
        self._X_history = None
        if X is None:
            return
        from trace_forecast.tasks.covariates import fit_covariate_map

        self._X_history = X.copy()
        histories = {key: frame.index for key, frame in instances(self._history)}
        covariates = self._covariates(X, histories)
        n_cols = len(self._columns)
        self.covariate_map_, validation = fit_covariate_map(
            self.network_, series, covariates, np.arange(len(series)) % n_cols, n_cols, self.validation_fraction,
            seed=self.random_state or 0, device=self.device)
        if len(validation):
            # Where the head corrects the forecasts, intervals come from the corrected forecasts'
            # residuals on its validation windows (out of sample for the network and for the
            # head's weights; only its penalty was chosen on them).
            self.residuals_ = validation.newest(len(series))

    def _covariate_correction(self, X: pd.DataFrame | None, pred: np.ndarray, histories: list[np.ndarray],
                              mean: np.ndarray, std: np.ndarray) -> np.ndarray | None:
        """RevIN-space corrections ``[n_series, H]`` of the next forecasts ``pred`` from
        ``X``'s rows for the forecast steps (``None`` for a forecaster fitted without covariates)."""
        if getattr(self, "covariate_map_", None) is None:
            return None
        if X is None:
            raise DataError("the forecaster was fitted with covariates X: predict needs X for the forecast rows too")
        from trace_forecast.tasks.covariates import corrections

        X = self._aligned_covariates(X)
        horizon = self.network_.spec.horizon
        future_indexes = self._future_indexes(ForecastingHorizon(np.arange(1, horizon + 1), is_relative=True))
        parts = instances(self._history)
        futures = self._covariates(X, {key: index for (key, _), index in zip(parts, future_indexes, strict=True)})
        if all(not np.isfinite(f).any() for f in futures):
            first, last = min(i[0] for i in future_indexes), max(i[-1] for i in future_indexes)
            raise DataError(f"X has no values for the forecast rows ({first} ... {last}): "
                            "covariates must be given for the steps to forecast")
        contexts = self._covariates(self._X_history, {key: frame.index[-self.context_length:] for key, frame in parts})
        return corrections(self.covariate_map_, contexts, futures, np.arange(len(futures)) % len(self._columns),
                           pred, histories, mean, std)

    def _store(self, fit: ForecastFit, series: list[np.ndarray]) -> None:
        store_fit(self, fit.result)
        self.residuals_ = fit.residuals.newest(len(series))
        self._scored_lengths = [len(s) for s in series]

    def _calibrate_online(self, series: list[np.ndarray]) -> None:
        """Add the residuals of windows that the new observations completed (the model's
        out-of-sample errors) to the calibration pool, keeping its newest windows."""
        from trace_forecast.tasks.calibration import windows_per_series
        from trace_forecast.tasks.forecast import realised_residuals

        if len(series) != len(self._scored_lengths):  # new instances: start their count at zero
            self._scored_lengths = self._scored_lengths + [0] * (len(series) - len(self._scored_lengths))
        covariate_map = getattr(self, "covariate_map_", None)
        if covariate_map is not None and covariate_map.active:
            from trace_forecast.tasks.covariates import corrected_residuals
            from trace_forecast.tasks.forecast import realised_origins

            origins = realised_origins(series, self._scored_lengths, self.network_.spec.horizon,
                                       windows_per_series(len(series)))
            covariates = self._covariates(self._X_history, {key: frame.index for key, frame in instances(self._history)})
            new = corrected_residuals(covariate_map, self.network_, series, covariates,
                                      np.arange(len(series)) % len(self._columns), origins, self.device)
        else:
            new = realised_residuals(self.network_, series, self._scored_lengths, windows_per_series(len(series)),
                                     device=self.device)
        self.residuals_ = self.residuals_.extend(new, len(series))
        self._scored_lengths = [len(s) for s in series]

    # ------------------------------------------------------------------ sktime API
    def _pretrain(self, y, X=None, fh=None):
        """Fit the adapters and head on a panel of related series (global pretraining)."""
        self._check_params()
        if fh is None:
            raise ValueError("pretrain needs fh: the forecasting head is built for a horizon")
        if not fh.is_relative:
            raise ValueError("pretrain needs a relative fh (steps ahead), e.g. fh=[1, 2, 3]")
        horizon = int(np.asarray(fh.to_pandas(), dtype=int).max())
        _, series = self._series(y)
        fit = self._fit_series(series, horizon)
        self.pretrained_network_ = fit.network
        self.pretrained_horizon_ = horizon
        return self

    def _pretrain_update(self, y, X=None, fh=None):
        _, series = self._series(y)
        fit = self._fit_series(series, self.pretrained_horizon_, init=self.pretrained_network_)
        self.pretrained_network_ = fit.network
        return self

    def _fit(self, y, X=None, fh=None):
        self._check_params()
        self._freq = time_frequency(y, "y")  # irregular time stamps: an error now, not after the fit
        steps = self._horizon(fh)
        horizon = int(steps.max())
        self._columns = list(y.columns)
        self._history = y.copy()
        _, series = self._series(y)
        self._future_indexes(fh)  # an absolute fh on a panel whose instances end apart: an error now
        adopted = self.__dict__.pop("_adopted__fit", None)
        if adopted is not None:  # to_forecaster or load_adapters: a fitted network, no training
            adopt_fit(self, adopted)
            self._check_horizon(steps)
            if adopted["residuals"] is None:  # saved without calibration: calibrate on y
                from trace_forecast.tasks.calibration import ResidualPool

                self.residuals_, self._scored_lengths = ResidualPool.empty(self.network_.spec.horizon), [0] * len(series)
                self._calibrate_online(series)
            else:
                self.residuals_ = adopted["residuals"]
                self._scored_lengths = [len(s) for s in series]
            return self
        init = None
        pretrained = getattr(self, "pretrained_network_", None)
        if pretrained is not None:
            if horizon > self.pretrained_horizon_:
                raise ValueError(
                    f"fh reaches {horizon} steps but the pretrained head forecasts {self.pretrained_horizon_}; "
                    "pretrain with an fh at least as long"
                )
            init = copy.deepcopy(pretrained)
            horizon = self.pretrained_horizon_
        self._store(self._fit_series(series, horizon, init=init), series)
        self._fit_covariates(X, series)
        return self

    def _update(self, y, X=None, update_params=True):
        y = aligned(y, self._columns, "y", "the forecaster was fitted on")
        check_frame(y, "y")
        combined = pd.concat([self._history, y])
        history = combined[~combined.index.duplicated(keep="last")].sort_index()
        self._freq = time_frequency(history, "y")  # irregular stamps raise before anything changes
        self._history = history
        if getattr(self, "_X_history", None) is not None and X is not None:
            both = pd.concat([self._X_history, self._aligned_covariates(X)])
            self._X_history = both[~both.index.duplicated(keep="last")].sort_index()
        _, series, _ = self._split(self._history)
        if update_params:
            self._store(
                self._fit_series(series, self.network_.spec.horizon, init=self.network_, max_epochs=self.update_epochs),
                series,
            )
            if getattr(self, "_X_history", None) is not None:
                self._fit_covariates(self._X_history, series)
        else:
            self._calibrate_online(series)
        return self

    def _index_names(self) -> list | None:
        index = self._history.index
        return list(index.names) if isinstance(index, pd.MultiIndex) else None

    def _forecast_at(self, fh, steps: np.ndarray, offsets: list[np.ndarray], X=None) -> list[pd.DataFrame]:
        """One frame per offset: ``(pred + offset) * std + mean`` at ``steps`` (of ``fh``).

        ``offsets`` are RevIN-space shifts per step, ``[n_steps]`` or per series
        ``[n_series, n_steps]`` (zeros for the point forecast, residual quantiles for
        intervals); the network runs once for all of them.
        """
        self._check_horizon(steps)
        keys, series, conditions = self._split(self._history)  # validated when it was stored
        histories = self._contexts(series)
        from trace_forecast.tasks.forecast import predict_normalized

        pred, mean, std = predict_normalized(self.network_, histories, device=self.device)
        correction = self._covariate_correction(X, pred, histories, mean, std)
        if correction is not None:
            pred = pred + correction
        index = self._future_indexes(fh)
        columns = pd.Index(self._columns)
        return [
            assemble(keys, columns, index,
                     restored((pred[:, steps - 1] + offset) * std[:, None] + mean[:, None], conditions),
                     self._index_names())
            for offset in offsets
        ]

    def _predict(self, fh, X=None):
        steps = self._horizon(fh)
        return self._forecast_at(fh, steps, [np.zeros(len(steps))], X)[0]

    def _check_calibrated(self, steps: np.ndarray) -> None:
        """Intervals only at steps that have residuals to calibrate on (a zero-shot fit on series
        shorter than its horizon has none further ahead than the data reach)."""
        reached = self.residuals_.calibrated(steps - 1)
        if not reached.all():
            every = np.flatnonzero(self.residuals_.calibrated(np.arange(self.network_.spec.horizon)))
            raise DataError(
                f"prediction intervals at step {steps[~reached][0]} cannot be calibrated: no series was long enough "
                f"to hold out a target that far ahead (calibrated steps: up to {every[-1] + 1 if len(every) else 0})")

    def _predict_quantiles(self, fh, X=None, alpha=None):
        steps = self._horizon(fh)
        self._check_calibrated(steps)
        q = self.residuals_.quantiles(list(alpha), steps - 1, len(self._scored_lengths))  # [n_series, n_alpha, n_steps]
        frames = self._forecast_at(fh, steps, list(q.transpose(1, 0, 2)), X)
        for frame, a in zip(frames, alpha, strict=True):
            frame.columns = pd.MultiIndex.from_tuples([(c, a) for c in self._columns])
        out = pd.concat(frames, axis=1)
        return out[[(c, a) for c in self._columns for a in alpha]]

    def _predict_var(self, fh, X=None, cov=False):
        """Variance of the conformal predictive distribution that the quantiles come from:
        the calibration residuals' variance per horizon step, times each window's RevIN
        scale and each series' difficulty scale (:class:`~trace_forecast.tasks.calibration.ResidualPool`)."""
        if cov:
            raise NotImplementedError("TraceForecaster gives marginal variances only (cov=False)")
        from trace_forecast.tasks.forecast import predict_normalized

        steps = self._horizon(fh)
        self._check_horizon(steps)
        self._check_calibrated(steps)
        keys, series, conditions = self._split(self._history)
        _, _, std = predict_normalized(self.network_, self._contexts(series), device=self.device)
        var = self.residuals_.variance(steps - 1, len(series))  # [n_series, n_steps]
        index = self._future_indexes(fh)
        return assemble(keys, pd.Index(self._columns), index, restored(std[:, None] ** 2 * var, conditions, power=2),
                        self._index_names())

    def to_detector(self, X=None, **params):
        """A fitted :class:`~trace_forecast.TraceAnomalyDetector` that scores anomalies with
        this forecaster's adapted network -- no second fit.

        The score reads what the adapted encoder and the pretrained reconstruction head
        cannot reconstruct; with ``multitask=True`` the adapters were trained for it
        (``docs/design.md``, "Multi-task training"). The detector's error scale and
        threshold are calibrated on ``X`` (default: the series the forecaster was fitted
        on and updated with), which takes forward passes only. ``params`` set the
        detector's scoring and labelling parameters (``score``, ``score_window``,
        ``threshold``, ``risk``, ...). The detector forecasts too (``to_forecaster``).
        """
        return conversion.to_detector(self, X, **params)

    def save_adapters(self, folder) -> Path:
        """Write the fitted adapters, gates, head and interval calibration to ``folder``: a
        JSON config and ``safetensors`` tensors, kilobytes, that :meth:`load_adapters`,
        ``TraceAnomalyDetector.load_adapters`` and Darts' ``TraceModel.load_adapters`` read
        onto the same backbone (``docs/user_guide.md``, "Adapters as files")."""
        return conversion.save_adapters(self, folder, getattr(self, "residuals_", None))  # unfitted: NotFittedError

    @classmethod
    def load_adapters(cls, folder, **params) -> TraceForecaster:
        """An unfitted forecaster that forecasts with the adapters saved in ``folder``.

        Its next ``fit(y, fh)`` trains nothing: it takes ``y`` as the history to forecast
        from (``fh`` within the saved horizon). The folder's parameters are used, ``params``
        override them (``backbone``: another copy of the same weights; it is checked by
        content hash). Nothing in the folder is executed; a damaged folder, a newer format
        or a different backbone raises :class:`~trace_forecast.errors.AdapterFileError`.
        """
        return conversion.from_adapters(cls, folder, params)

    def predict_histories(self, histories, covariates=None, future_covariates=None, columns=None) -> np.ndarray:
        """Forecast many univariate histories at once: ``[n, horizon]`` (batched, for evaluation).

        Each history is a 1-d array of past values (only the last ``context_length`` are
        used; shorter ones are left-padded with ``input_mask``). This bypasses sktime's
        per-call bookkeeping, so rolling evaluation over thousands of windows is fast.
        A forecaster fitted with ``X`` also needs, per history, ``covariates`` (``[T, K]``
        X rows of the history), ``future_covariates`` (``[horizon, K]`` X rows of the
        forecast steps) and ``columns`` (the position of the history's column in ``y``;
        default 0).
        """
        self.check_is_fitted()
        histories = [np.asarray(h, dtype=np.float64) for h in histories]
        bad = [i for i, h in enumerate(histories)
               if h.ndim != 1 or not np.isfinite(h[-self.context_length:]).any() or np.isinf(h).any()]
        if bad:
            raise DataError(f"histories {bad[:5]} are not 1-d, hold infinite values, or have no observed (finite) "
                            f"value in their last {self.context_length} steps")
        histories, conditions = conditioned(histories)
        from trace_forecast.tasks.forecast import predict_normalized

        pred, mean, std = predict_normalized(self.network_, histories, device=self.device)
        if getattr(self, "covariate_map_", None) is not None:
            if covariates is None or future_covariates is None:
                raise DataError("the forecaster was fitted with covariates X: give covariates (each history's X rows) "
                                "and future_covariates (X rows of the forecast steps)")
            from trace_forecast.tasks.covariates import corrections

            columns = np.zeros(len(histories), dtype=int) if columns is None else np.asarray(columns)
            pred = pred + corrections(self.covariate_map_, [np.asarray(c, np.float64) for c in covariates],
                                      [np.asarray(f, np.float64) for f in future_covariates], columns, pred,
                                      histories, mean, std)
        return restored(pred * std[:, None] + mean[:, None], conditions)

    def _contexts(self, series: list[np.ndarray]) -> list[np.ndarray]:
        """The last ``context_length`` values of each series; a :class:`DataError` names the
        columns whose context is all missing (there is nothing to forecast from)."""
        contexts = [s[-self.context_length :] for s in series]
        empty = [i for i, c in enumerate(contexts) if not np.isfinite(c).any()]
        if empty:
            n_cols = len(self._columns)
            keys = [k for k, _ in instances(self._history)]
            names = [f"column {self._columns[i % n_cols]!r}" + (f" of instance {keys[i // n_cols]!r}" if keys[0] else "")
                     for i in empty]
            raise DataError(f"{', '.join(names[:5])} has no observed value in its last {self.context_length} steps: "
                            "nothing to forecast from")
        return contexts

    def _check_horizon(self, steps: np.ndarray) -> None:
        horizon = self.network_.spec.horizon
        if steps.max() > horizon:
            raise ValueError(
                f"fh reaches {int(steps.max())} steps ahead but the model was fitted for at most {horizon}; "
                "refit with the longer fh"
            )

    # ------------------------------------------------------------------ testing
    @classmethod
    def get_test_params(cls, parameter_set="default"):
        """Tiny configurations that fit in about a second on a CPU."""
        fast = {"context_length": 32, "max_epochs": 1, "max_windows": 48, "batch_size": 16, "random_state": 0}
        return [
            {**fast, "dsic_interval": 1, "dsic_draws": 2},
            # Linear probing without validation windows: the other head and the no-validation
            # path. (PEFT's adapters build the same estimator; tests/test_forecaster.py fits them.)
            {**fast, "adapter": "none", "head": "linear", "validation_fraction": 0.0},
            {**fast, "fit_strategy": "zero-shot"},
        ]
