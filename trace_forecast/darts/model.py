"""TRACE as a native Darts foundation model.

:class:`TraceModel` subclasses Darts' :class:`~darts.models.forecasting.foundation_model.FoundationModel`
(a ``MixedCovariatesTorchModel``), so fitting, prediction, auto-regression, optimised
historical forecasts, back-testing, checkpoints, ``save``/``load`` and ensembles are
Darts' own machinery. What TRACE adds lives in the Lightning module
(:class:`~trace_forecast.darts.module.TraceModule`) and in two callbacks that this model
attaches to Darts' trainer: Gated DSIC (module selection) or PEFT's AdaLoRA allocator.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytorch_lightning as pl
import torch
from darts import TimeSeries
from darts.models.forecasting.foundation_model import FoundationModel
from darts.utils.data.torch_datasets.utils import (
    TorchTrainingSample,
    _parse_input_chunk_length,
)
from darts.utils.likelihood_models.torch import QuantileRegression
from darts.utils.serialization import add_safe_globals

from trace_forecast.darts.module import TraceModule
from trace_forecast.darts.validation import (
    as_list,
    check_series,
    series_units,
    split_for_validation,
    warn_small_units,
)
from trace_forecast.darts.windows import SubsampledTrainingDataset, samples_for_windows
from trace_forecast.engine.interrupt import interruptible
from trace_forecast.engine.quiet import console
from trace_forecast.engine.recipe import ClosedFormHeadStart, recipe_callbacks
from trace_forecast.engine.resume import RandomState
from trace_forecast.engine.settings import GRADIENT_CLIP, DSICSettings, TrainSettings
from trace_forecast.errors import ParameterError
from trace_forecast.heads.covariates import CovariateMap
from trace_forecast.parameters import (
    PARAMETERS,
    check_context_length,
    default,
    document,
    validate,
)
from trace_forecast.selection import GatedDSIC, history_frame

# Longest direct forecast of the head (the longest standard long-horizon benchmark);
# longer ``n`` are auto-regressive, as for every Darts torch model.
MAX_OUTPUT_CHUNK_LENGTH = 720
MAX_INPUT_CHUNK_LENGTH = 512  # MOMENT's context (every MOMENT checkpoint)
PATCH_LENGTH = 8  # MOMENT's patch length; the loaded backbone is checked again when the module is built
_REJECTED = {
    "use_reversible_instance_norm": "the backbone normalises every window itself (RevIN)",
    "loss_fn": "TraceModel trains TRACE's loss: forecast MSE in each window's RevIN space",
}


class TraceModel(FoundationModel):
    @document
    def __init__(
        self,
        input_chunk_length: int | tuple[int, int] = default("context_length"),
        output_chunk_length: int = 96,
        output_chunk_shift: int = 0,
        backbone=default("backbone"),
        adapter: str = default("adapter"),
        head: str = default("head"),
        lora_rank: int = default("lora_rank"),
        lora_targets: Sequence[str] | None = default("lora_targets"),
        dsic_budget: float = default("dsic_budget"),
        dsic_interval: int = default("dsic_interval"),
        dsic_draws: int = default("dsic_draws"),
        dsic_rule: str = default("dsic_rule"),
        dsic_warmup: float = default("dsic_warmup"),
        dsic_final: float = default("dsic_final"),
        temporal_map: str = default("temporal_map"),
        future_patches: int | str = default("future_patches"),
        head_init: str = default("head_init"),
        multitask: bool = default("multitask"),
        reconstruction_weight: float = default("reconstruction_weight"),
        validation_fraction: float = default("validation_fraction"),
        max_windows: int | None = default("max_windows"),
        batch_size: int = default("batch_size"),
        n_epochs: int = default("max_epochs"),
        random_state: int | None = default("random_state"),
        **kwargs,
    ):
        """TRACE: parameter-efficient fine-tuning of a MOMENT-style foundation model.

        A pretrained MOMENT-style encoder (the embedded ``trace-moment-tiny`` by default, or
        any ``AutonLab/MOMENT-1-*`` checkpoint) is adapted with gated LoRA modules selected
        by Gated DSIC, and forecasts through TRACE's reconstruction-based head: the
        pretrained reconstruction head plus a tiny temporal map (``(L + 1) * H``
        parameters instead of MOMENT's ``64 * d_model * H`` linear probe). Channels are
        modelled independently, so any number of components works, and one model is
        fitted on all the series given to :func:`fit()`.

        Fine-tuning runs in Darts' own Lightning trainer. The Gated DSIC callback is added
        to it automatically (next to any ``pl_trainer_kwargs["callbacks"]``) and estimates
        module importance on ``val_series``; without ``val_series`` the last
        ``validation_fraction`` of every training series is held out for it. When training
        starts the head's output layer is solved in closed form on frozen-backbone features
        (``head_init="ridge"``), then fine-tuned (LP-FT).

        Probabilistic forecasts, as Darts' foundation models give them: pass
        ``likelihood=QuantileRegression(quantiles)``, then ``predict(n, num_samples=500)``
        samples the quantiles and ``predict(n, predict_likelihood_parameters=True)`` returns
        them. The quantiles are conformal: after fitting, the quantiles per horizon step of
        the network's residuals on the validation windows (in each window's RevIN scale);
        training stays TRACE's. Darts' ``ConformalNaiveModel`` around a fitted model
        calibrates per series instead.

        Covariates: ``past_covariates`` and ``future_covariates`` (and those that
        ``add_encoders`` builds) are read by a covariate head fitted after fine-tuning, on
        the network's residuals: a ridge map per target component from the covariates around
        each forecast origin (future covariates over the output chunk too) to what the
        forecast missed, kept at zero where it does not help on validation windows. The
        backbone and the fine-tuning see the targets alone (``docs/darts.md``, "Covariates").
        Static covariates are not used. Inputs shorter than
        ``input_chunk_length`` are possible with ``input_chunk_length=(min, max)``: Darts
        left-pads them and the backbone ignores the padding through its ``input_mask``.

        Parameters
        ----------
        input_chunk_length : int or tuple of int, default=512
            Context fed to the backbone: an ``int`` (a multiple of the patch length 8, at
            most 512), or ``(min_length, max_length)`` for variable-length inputs (shorter
            inputs are left-padded and masked). TRACE's ``context_length``.
        output_chunk_length : int, default=96
            Steps forecast at once by the head (at most 720). Longer ``n`` in
            :func:`predict()` are auto-regressive.
        output_chunk_shift : int, default=0
            Steps between the end of the input and the start of the output chunk.
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
        {parameter:multitask}
        {parameter:reconstruction_weight}
        {parameter:validation_fraction}
            Used when :func:`fit()` gets no ``val_series``.
        {parameter:max_windows}
            A window is one channel of one Darts training sample.
        {parameter:batch_size}
            A Darts sample holds one window per channel, so a training step takes
            ``batch_size // n_channels`` samples (at least one); prediction batches
            ``batch_size`` samples.
        {parameter:max_epochs as n_epochs}
        {parameter:random_state}
        **kwargs
            Darts' :class:`TorchForecastingModel` parameters: ``optimizer_cls``,
            ``optimizer_kwargs`` (default ``{"lr": 1e-4}``: the peak learning rate of the
            recipe's one-cycle AdamW schedule, the same as the sktime estimators'
            ``learning_rate``; giving ``optimizer_cls`` or ``lr_scheduler_cls`` replaces
            the recipe's optimiser by Darts' own), ``lr_scheduler_cls``,
            ``lr_scheduler_kwargs``, ``torch_metrics``, ``model_name``, ``work_dir``,
            ``log_tensorboard``, ``nr_epochs_val_period``, ``force_reset``,
            ``save_checkpoints``, ``add_encoders`` (read by the covariate head),
            ``pl_trainer_kwargs`` (e.g. ``{"accelerator": "gpu", "devices": 2,
            "precision": "bf16-mixed"}``; gradient clipping defaults to the recipe's
            ``gradient_clip_val=1.0``) and ``show_warnings``. ``enable_finetuning=False``
            is Darts' foundation-model zero-shot mode: ``fit`` trains nothing and the head
            reads the pretrained backbone's prediction of the hidden future patches,
            averaged with its prediction for the negated series (``True``, the default,
            fine-tunes). ``likelihood``: ``None`` or a
            ``QuantileRegression`` (see above). ``loss_fn`` and
            ``use_reversible_instance_norm`` are fixed by the method and rejected.

        Examples
        --------
        >>> from darts import TimeSeries
        >>> from trace_forecast.darts import TraceModel
        >>> from trace_forecast.datasets import load_etth1
        >>> series = TimeSeries.from_dataframe(load_etth1()[["OT"]].iloc[:2000]).astype("float32")
        >>> model = TraceModel(input_chunk_length=96, output_chunk_length=24, n_epochs=1, random_state=0)
        >>> model.fit(series, verbose=False)  # doctest: +ELLIPSIS
        TraceModel(...)
        >>> forecast = model.predict(n=48, verbose=False)  # 24 steps at once, then auto-regression
        >>> forecast.n_timesteps, forecast.start_time() == series.end_time() + series.freq
        (48, True)
        """
        arguments = dict(locals())  # the signature is the list of what is validated
        for key, why in _REJECTED.items():
            if kwargs.get(key) not in (None, False):
                raise ParameterError(f"TraceModel does not accept `{key}`: {why}")
        if kwargs.get("likelihood") is not None and not isinstance(kwargs["likelihood"], QuantileRegression):
            raise ParameterError(
                "TraceModel's likelihood is None (point forecasts) or a QuantileRegression (conformal quantiles "
                f"calibrated on validation windows), got {type(kwargs['likelihood']).__name__}"
            )
        finetune = kwargs.pop("enable_finetuning", None)
        if finetune not in (None, True, False):
            raise ParameterError(
                "TraceModel's enable_finetuning is True (the default: TRACE fine-tuning; choose what trains "
                "with `adapter`) or False (zero-shot: fit() trains nothing), got "
                f"{finetune!r}; partial freezing is what `adapter` does"
            )
        if not isinstance(input_chunk_length, tuple | list):
            validate({"input_chunk_length": input_chunk_length})
        try:
            _, max_icl = _parse_input_chunk_length(input_chunk_length)
        except (TypeError, ValueError) as error:
            raise ParameterError(f"input_chunk_length must be an int or (min_length, max_length): {error}") from None
        validate({**arguments, "input_chunk_length": max_icl})
        check_context_length(max_icl, PATCH_LENGTH, MAX_INPUT_CHUNK_LENGTH, "input_chunk_length")
        if not 1 <= output_chunk_length + output_chunk_shift <= MAX_OUTPUT_CHUNK_LENGTH:
            raise ParameterError(
                f"output_chunk_length + output_chunk_shift must be between 1 and {MAX_OUTPUT_CHUNK_LENGTH} "
                f"(the longest direct forecast of the head), got {output_chunk_length + output_chunk_shift}; "
                "longer horizons are auto-regressive: predict(n) with n > output_chunk_length"
            )
        lr = (kwargs.get("optimizer_kwargs") or {}).get("lr", default("learning_rate"))
        PARAMETERS["learning_rate"].check(lr, "optimizer_kwargs['lr']")
        # Fine-tuning is the method (`adapter` has already frozen what must not train), unless the
        # user asks for Darts' foundation-model zero-shot mode with enable_finetuning=False.
        zero_shot = finetune is False
        self.model_params["enable_finetuning"] = not zero_shot
        recipe_optimizer = kwargs.get("optimizer_cls") is None and kwargs.get("lr_scheduler_cls") is None
        super().__init__(**kwargs)
        self.trainer_params.setdefault("gradient_clip_val", GRADIENT_CLIP)  # the recipe's clipping
        # A model summary per fit is noise in back-tests; fit(verbose=True) or pl_trainer_kwargs show it.
        self.trainer_params.setdefault("enable_model_summary", False)
        self.pl_module_params.update(
            backbone=backbone,
            adapter=adapter,
            head=head,
            lora_rank=lora_rank,
            lora_targets=None if lora_targets is None else list(lora_targets),
            temporal_map=temporal_map,
            future_patches=future_patches,
            head_init=head_init,
            reconstruction_weight=reconstruction_weight if multitask else 0.0,
            network_seed=0 if random_state is None else int(random_state),
            recipe_optimizer=recipe_optimizer,
            zero_shot=zero_shot,
        )
        self.pl_module_params.pop("enable_finetuning", None)
        if self.pl_module_params.get("optimizer_kwargs") is None:
            self.pl_module_params["optimizer_kwargs"] = {"lr": default("learning_rate")}
        self._has_validation = False
        self._dataset_caps: list[int | None] = []

    # ------------------------------------------------------------------ Darts hooks
    @property
    def supports_past_covariates(self) -> bool:
        return True

    @property
    def supports_future_covariates(self) -> bool:
        return True

    @property
    def supports_static_covariates(self) -> bool:
        return False

    @property
    def supports_multivariate(self) -> bool:
        return True

    def _create_model(self, train_sample: TorchTrainingSample) -> TraceModule:
        module = TraceModule(**self.pl_module_params)
        adopted = self.__dict__.pop("_adopted_network", None)
        if adopted is not None:  # load_adapters: the saved network, nothing to train
            module.network = adopted
            module.head_initialised.fill_(True)
        return module

    @property
    def _requires_training(self) -> bool:
        """Fine-tuning, unless zero-shot or the adapters were loaded (:meth:`load_adapters`)."""
        return super()._requires_training and not getattr(self, "_loaded_adapters", False)

    def _setup_finetuning(self, model: TraceModule) -> None:
        """Keep the trainable set that ``adapter`` chose (Darts' flag would unfreeze all)."""

    def _recipe_settings(self) -> TrainSettings:
        p = self.model_params
        return TrainSettings(random_state=p["random_state"], dsic=DSICSettings.from_params(p))

    def _setup_trainer(self, trainer, model, verbose=None, epochs: int = 0) -> pl.Trainer:
        """Darts' trainer plus the recipe's callbacks (closed-form head start, Gated DSIC or
        AdaLoRA's allocator, early stopping when there is validation data)."""
        requested = self._has_validation or self.model_params["validation_fraction"] > 0
        extra = [*recipe_callbacks(model.network, self._recipe_settings(), self._has_validation,
                                   ClosedFormHeadStart(validation_requested=requested), requested),
                 RandomState()]  # in Darts' checkpoints: a resumed fit shuffles as the interrupted one would have
        if trainer is not None:
            present = {type(cb) for cb in trainer.callbacks}
            trainer.callbacks.extend(cb for cb in extra if type(cb) not in present)
            return trainer
        saved = self.trainer_params
        user = list(saved.get("callbacks", []))
        present = {type(cb) for cb in user}
        params = {**saved, "callbacks": [*user, *(cb for cb in extra if type(cb) not in present)]}
        if params.get("strategy") == "ddp" and model.network.gated_lora is not None:
            # Gated DSIC stops training pruned modules; DDP must not wait for their gradients.
            params["strategy"] = "ddp_find_unused_parameters_true"
        self.trainer_params = params
        try:
            return super()._setup_trainer(None, model, verbose, epochs)
        finally:
            self.trainer_params = saved

    def _build_train_dataset(self, series, past_covariates, future_covariates, sample_weight,
                             max_samples_per_ts, stride: int = 1):
        """Darts' dataset, capped at ``max_windows`` windows (a quarter of it for validation),
        as the engine caps its windows."""
        pool = super()._build_train_dataset(series, past_covariates, future_covariates, sample_weight,
                                            max_samples_per_ts, stride)
        cap = self._dataset_caps.pop(0) if self._dataset_caps else None
        samples = samples_for_windows(cap, series[0].width)
        if samples is None or len(pool) <= samples:
            return pool
        seed = self.model_params["random_state"] or 0
        return SubsampledTrainingDataset(pool, samples, seed + len(self._dataset_caps))

    # ------------------------------------------------------------------ public API
    def fit(
        self,
        series: TimeSeries | Sequence[TimeSeries],
        past_covariates=None,
        future_covariates=None,
        val_series: TimeSeries | Sequence[TimeSeries] | None = None,
        *args,
        **kwargs,
    ) -> TraceModel:
        """Fine-tune on one or several series (see Darts' :meth:`TorchForecastingModel.fit`).

        Without ``val_series``, the last ``validation_fraction`` of every series that is
        long enough becomes validation data (Gated DSIC's importance, ``val_loss``).
        """
        need = self.min_input_chunk_length + self.output_chunk_length + self.output_chunk_shift
        check_series(series, "series", need)
        warn_small_units(series, "series")
        if val_series is not None:
            check_series(val_series, "val_series", need)
        if kwargs.get("sample_weight") is not None or kwargs.get("val_sample_weight") is not None:
            raise ParameterError("TraceModel does not support sample weights: it weighs each window by its scale "
                                 "in its series itself (errors count in each series' own units)")
        given = series
        val_units = None if val_series is None else series_units(val_series)
        if val_series is None and self.model_params["validation_fraction"] > 0:
            series, val_series, sources = split_for_validation(
                series, self.model_params["validation_fraction"], need, self.input_chunk_length
            )
            if val_series is not None:  # a held-out part keeps its whole series' unit
                val_units = series_units(val_series, [as_list(given)[i] for i in sources])
        # Each series' unit rides in Darts' sample weights (the module reads them as units).
        kwargs.update(sample_weight=series_units(series, as_list(given)), val_sample_weight=val_units)
        covariates_given = past_covariates is not None or future_covariates is not None
        if (covariates_given or self.model_params.get("add_encoders")) and self.output_chunk_shift > 0:
            raise ParameterError("TraceModel reads covariates with output_chunk_shift=0 only (the covariate head "
                                 "reads the future covariates of every forecast step)")
        if covariates_given and val_series is not None and kwargs.get("val_past_covariates") is None \
                and kwargs.get("val_future_covariates") is None and given is not series:
            # the held-out parts are slices of the given series: the same covariates cover them
            kwargs.update(val_past_covariates=_pick(past_covariates, sources),
                          val_future_covariates=_pick(future_covariates, sources))
        self._has_validation = val_series is not None
        self._selection_history = None
        self._covariate_map = None
        if self.model is not None:
            self.model.covariate_map = None  # trained and validated on the targets alone
        cap = self.model_params["max_windows"]
        self._dataset_caps = [cap, None if cap is None else max(1, cap // 4)]
        # batch_size counts univariate windows, as in the engine: a sample holds one per channel.
        self.batch_size = max(1, self.model_params["batch_size"] // as_list(given)[0].width)
        try:
            with console(bool(kwargs.get("verbose"))), interruptible():
                super().fit(series, past_covariates, future_covariates, val_series, *args, **kwargs)
        finally:
            self._dataset_caps = []
            self.batch_size = self.model_params["batch_size"]
        if isinstance(given, TimeSeries):  # predict() continues the whole series, not its training part
            self.training_series = given
        self._calibrate_quantiles(val_series if val_series is not None else series)
        if (self.uses_past_covariates or self.uses_future_covariates) and self.model is not None:
            self._fit_covariate_head(given, past_covariates, future_covariates)
        dsic = next((cb for cb in getattr(self.trainer, "callbacks", []) if isinstance(cb, GatedDSIC)), None)
        if dsic is not None:  # kept on the model (saved with it), the trainer is not
            self._selection_history = history_frame(dsic.selection_history(), dsic.module_names)
        self._checkpoint_the_fitted_state()
        return self

    def _checkpoint_the_fitted_state(self) -> None:
        """With ``save_checkpoints``: the fitted state as Darts' newest ``best-*`` and
        ``last-*`` checkpoints, so that ``load_from_checkpoint`` gives the fitted model.
        The recipe keeps the state its validation windows prefer, which Lightning's files
        need not hold: the closed-form start trains no epoch at all (a short series: no
        checkpoint was written, and ``load_from_checkpoint`` found no file), and a trained
        epoch the start beat is in them. The conformal offsets are in the state too."""
        if not self.save_checkpoints or self.trainer is None:
            return
        for callback in self.trainer.checkpoint_callbacks:
            if isinstance(callback, pl.callbacks.ModelCheckpoint) and callback.dirpath:
                name = "last-epoch=0.ckpt" if callback.monitor is None else "best-kept.ckpt"
                self.trainer.save_checkpoint(callback.best_model_path or str(Path(callback.dirpath) / name))

    def _fit_covariate_head(self, series, past_covariates, future_covariates) -> None:
        """The covariate head (:mod:`trace_forecast.darts.covariates`) on the fitted network's
        residuals over ``series``, with the covariates Darts trained with (the encoders' too)."""
        from trace_forecast.darts.covariates import fit_head

        if self.encoders is not None and self.encoders.encoding_available:
            past_covariates, future_covariates = self.generate_fit_encodings(series, past_covariates,
                                                                             future_covariates)
        if self.uses_past_covariates is False:
            past_covariates = None
        if self.uses_future_covariates is False:
            future_covariates = None
        head, residuals = fit_head(self.model.network, series, past_covariates, future_covariates,
                                   self.model_params["validation_fraction"], self.model_params["random_state"] or 0)
        self._covariate_map = head
        self._attach_covariate_head()
        if self.likelihood is not None and len(residuals):  # quantiles of the corrected forecasts
            self._set_interval_offsets(residuals)

    def _attach_covariate_head(self) -> None:
        """Hand the covariate head to the Lightning module (which Darts rebuilds on ``load``)."""
        if self.model is not None:
            self.model.covariate_map = getattr(self, "_covariate_map", None)

    @property
    def covariate_head(self):
        """The fitted covariate head (a :class:`~trace_forecast.heads.covariates.CovariateMap`),
        or ``None`` for a model fitted without covariates."""
        return getattr(self, "_covariate_map", None)

    def _calibrate_quantiles(self, series: TimeSeries | Sequence[TimeSeries]) -> None:
        """With a ``QuantileRegression`` likelihood: the module's conformal offsets, the
        quantiles per horizon step (at split-conformal's finite-sample levels) of the
        fitted network's residuals (RevIN units) on the
        windows of ``series`` -- the held-out validation parts, or the training series when
        nothing was held out (``docs/design.md``, "Prediction intervals")."""
        from trace_forecast.tasks.calibration import (
            FIT_CALIBRATION_WINDOWS,
            spread_in_time,
        )
        from trace_forecast.tasks.forecast import residual_pool

        if self.likelihood is None or self.model is None:
            return
        arrays = [ts.values(copy=False)[:, c].astype("float32") for ts in as_list(series) for c in range(ts.width)]
        horizon = self.output_chunk_length + self.output_chunk_shift
        first = self.min_input_chunk_length
        origins = [(i, o) for i, a in enumerate(arrays) for o in range(first, len(a) - horizon + 1)]
        if not origins:
            return
        network = self.model.network
        device = "cuda" if next(network.parameters()).is_cuda else "cpu"
        plan = spread_in_time(np.asarray(origins, dtype=np.int64), FIT_CALIBRATION_WINDOWS)
        self._set_interval_offsets(residual_pool(network, arrays, plan, device).residuals)

    def _set_interval_offsets(self, residuals: np.ndarray) -> None:
        """The conformal offsets from residual windows ``[n, H]`` (RevIN units)."""
        from trace_forecast.tasks.calibration import conformal_levels

        levels = conformal_levels(self.likelihood.quantiles, len(residuals))
        offsets = np.quantile(residuals[:, self.output_chunk_shift :], levels, axis=0)
        self.model.interval_offsets.copy_(torch.as_tensor(offsets, dtype=self.model.interval_offsets.dtype))

    def predict(self, n: int, series=None, *args, **kwargs):
        """Forecast ``n`` steps after the end of each series (see Darts' ``predict``)."""
        if series is not None:
            check_series(series, "series", self.min_input_chunk_length)
        self._attach_covariate_head()
        with console(bool(kwargs.get("verbose"))):
            return super().predict(n, series, *args, **kwargs)

    def historical_forecasts(self, series, *args, **kwargs):
        check_series(series, "series", self.min_input_chunk_length)
        self._attach_covariate_head()
        with console(bool(kwargs.get("verbose"))):
            return super().historical_forecasts(series, *args, **kwargs)

    @property
    def network(self):
        """The adapted :class:`~trace_forecast.network.TraceNetwork` (after fitting)."""
        return None if self.model is None else self.model.network

    def to_anomaly_scorer(self, series: TimeSeries | Sequence[TimeSeries] | None = None, **params):
        """A fitted :class:`~trace_forecast.darts.TraceAnomalyScorer` that scores anomalies
        with this model's adapted network -- no second fit.

        The scorer's error scale is calibrated on ``series`` (default: the series the
        model was fitted on, when it was one series), which takes forward passes only.
        ``params`` set the scorer's scoring parameters (``scoring``, ``score_window``,
        ``component_wise``, ...). With ``multitask=True`` the adapters were trained for the
        score as well as the forecast (``docs/design.md``, "Multi-task training").
        """
        from trace_forecast.darts.scorer import TraceAnomalyScorer

        if self.network is None:
            raise ValueError("fit the model before asking for its anomaly scorer")
        if series is None:
            series = getattr(self, "training_series", None)
            if series is None:
                raise ValueError("the model was fitted on several series: pass the series to calibrate the "
                                 "scorer on, to_anomaly_scorer(series)")
        p = self.model_params
        settings = {"context_length": self.network.spec.context_length, "backbone": self.pl_module_params["backbone"],
                    "adapter": p["adapter"], "lora_rank": p["lora_rank"], "lora_targets": p["lora_targets"],
                    "random_state": p["random_state"], **params}
        scorer = TraceAnomalyScorer(**settings)
        scorer._adopted_network = copy.deepcopy(self.network).eval()
        return scorer.fit(series)

    def save_adapters(self, folder) -> Path:
        """Write the fitted adapters, gates and head to ``folder``: a JSON config and
        ``safetensors`` tensors that :meth:`load_adapters` and the sktime estimators'
        ``load_adapters`` read onto the same backbone (``docs/darts.md``, "Adapters as
        files"). Interval offsets are not saved: a loaded model calibrates them on the
        series given to ``fit``."""
        from trace_forecast.parameter_count import parameter_report
        from trace_forecast.tasks.adapter_folder import frame_json, save_adapter_folder

        if self.network is None:
            raise ValueError("fit the model before saving its adapters")
        report = {"trainable_parameters": parameter_report(self.network),
                  "selected_modules": frame_json(self.selected_modules()),
                  "selection_history": frame_json(self.selection_history()),
                  "train_loss": [], "val_loss": [], "fit_seconds": None, "fit_choices": {}}
        params = {**self.model_params, "backbone": self.pl_module_params["backbone"]}
        return save_adapter_folder(folder, self.network, params["backbone"], "darts", params, report)

    @classmethod
    def load_adapters(cls, folder, **kwargs) -> TraceModel:
        """A model that forecasts with the adapters saved in ``folder`` (by a ``TraceModel``
        or a ``TraceForecaster``).

        Its ``fit(series)`` trains nothing: it sets Darts' model up on ``series`` (and
        calibrates conformal quantiles there, with a ``QuantileRegression`` likelihood). The
        folder's parameters are used, with ``input_chunk_length`` and the horizon the
        adapters were trained for; ``kwargs`` override the others. Nothing in the folder is
        executed; a damaged folder, a newer format or a different backbone raises
        :class:`~trace_forecast.errors.AdapterFileError`.
        """
        from trace_forecast.tasks.adapter_folder import read_adapter_folder

        loaded = read_adapter_folder(folder, kwargs.get("backbone", "as saved"))
        spec = loaded.network.spec
        if spec.task != "forecast":
            raise ValueError(f"{folder} holds an anomaly-scoring network without a forecasting head")
        saved = loaded.params
        settings = loaded.params_for(cls)
        if loaded.kind != "darts" and "max_epochs" in saved:
            settings["n_epochs"] = saved["max_epochs"]
        shift = int(saved.get("output_chunk_shift", 0)) if loaded.kind == "darts" else 0
        settings.update(input_chunk_length=spec.context_length, output_chunk_length=spec.horizon - shift,
                        output_chunk_shift=shift)
        for fixed in ("input_chunk_length", "output_chunk_length", "output_chunk_shift"):
            if fixed in kwargs and kwargs[fixed] != settings[fixed]:
                raise ParameterError(f"the adapters in {folder} were trained with {fixed}={settings[fixed]}, "
                                     f"got {kwargs[fixed]}")
        model = cls(**{**settings, **kwargs})
        model._adopted_network = loaded.network
        model._loaded_adapters = True
        return model

    def selection_history(self) -> pd.DataFrame:
        """Gated DSIC's selection rounds of the last :func:`fit()`, one row per (round,
        module): ``step``, ``module``, ``importance``, ``kept``, ``final`` (empty for other
        adapters; what :func:`~trace_forecast.plotting.plot_adapter_selection` draws)."""
        history = getattr(self, "_selection_history", None)
        return history_frame([], []) if history is None else history.copy()

    def selected_modules(self) -> pd.DataFrame:
        """Gated DSIC's result: one row per gated module (``module``, ``kept``, ``gate``)."""
        lora = None if self.network is None else self.network.gated_lora
        if lora is None:
            return pd.DataFrame(columns=["module", "kept", "gate"])
        masks, gates = lora.masks(), lora.gate_values()
        return pd.DataFrame(
            {"module": lora.names, "kept": [bool(m > 0.5) for m in masks], "gate": [float(g) for g in gates]}
        )

    def trainable_parameters(self) -> int:
        """Trainable parameters of the adapted network (adapters, gates and head)."""
        if self.network is None:
            return 0
        return int(sum(p.numel() for p in self.network.parameters() if p.requires_grad))


def _pick(covariates, sources: list[int]):
    """The covariates of the series ``sources`` (``None`` stays ``None``)."""
    if covariates is None:
        return None
    items = as_list(covariates)
    return [items[i] for i in sources]


# Darts loads saved models through a restricted unpickler; these are our safe classes.
add_safe_globals([TraceModel, TraceModule, CovariateMap])

__all__ = ["TraceModel"]
