"""TRACE as a native Darts foundation model.

:class:`TraceModel` subclasses Darts' :class:`~darts.models.forecasting.foundation_model.FoundationModel`
(a ``MixedCovariatesTorchModel``), so fitting, prediction, auto-regression, optimised
historical forecasts, back-testing, checkpoints, ``save``/``load`` and ensembles are
Darts' own machinery. What TRACE adds lives in the Lightning module
(:class:`~trace_forecast.darts.module.TraceModule`) and in two callbacks that this model
attaches to Darts' trainer: Gated DSIC (module selection) or PEFT's AdaLoRA allocator.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytorch_lightning as pl
from darts import TimeSeries
from darts.models.forecasting.foundation_model import FoundationModel
from darts.utils.data.torch_datasets.utils import TorchTrainingSample, _parse_input_chunk_length
from darts.utils.serialization import add_safe_globals

from trace_forecast.adapters import DEFAULT_TARGETS
from trace_forecast.darts.module import TraceModule
from trace_forecast.darts.validation import check_series, split_for_validation
from trace_forecast.engine.trainer import DSICSettings, TrainSettings, engine_callbacks
from trace_forecast.heads.reconstruction import TEMPORAL_MAPS
from trace_forecast.network import ADAPTERS, HEADS

# Longest direct forecast of the head (the longest standard long-horizon benchmark);
# longer ``n`` are auto-regressive, as for every Darts torch model.
MAX_OUTPUT_CHUNK_LENGTH = 720
MAX_INPUT_CHUNK_LENGTH = 512
DEFAULT_LEARNING_RATE = 1e-4
_REJECTED = {
    "likelihood": "TraceModel is deterministic (likelihood must be None)",
    "use_reversible_instance_norm": "the backbone normalises every window itself (RevIN)",
    "loss_fn": "TraceModel trains TRACE's loss: forecast MSE in each window's RevIN space",
}


class TraceModel(FoundationModel):
    def __init__(
        self,
        input_chunk_length: int | tuple[int, int] = 512,
        output_chunk_length: int = 96,
        output_chunk_shift: int = 0,
        backbone=None,
        adapter: str = "gated_dsic",
        head: str = "reconstruction",
        lora_rank: int = 2,
        lora_targets: Sequence[str] | None = None,
        dsic_budget: float | int = 0.5,
        dsic_interval: int = 10,
        dsic_draws: int = 8,
        dsic_warmup: float | int = 0.2,
        dsic_final: float | int = 0.7,
        temporal_map: str = "linear",
        head_init: str = "ridge",
        reconstruction_weight: float = 0.0,
        validation_fraction: float = 0.2,
        batch_size: int = 32,
        n_epochs: int = 3,
        random_state: int | None = None,
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

        The model supports neither covariates nor a likelihood. Inputs shorter than
        ``input_chunk_length`` are possible with ``input_chunk_length=(min, max)``: Darts
        left-pads them and the backbone ignores the padding through its ``input_mask``.

        Parameters
        ----------
        input_chunk_length
            Context fed to the backbone: an ``int`` up to 512, or ``(min_length, max_length)``
            for variable-length inputs. Rounded up to a multiple of the patch length (8)
            with masked padding.
        output_chunk_length
            Steps forecast at once by the head (at most 720). Longer ``n`` in
            :func:`predict()` are auto-regressive.
        output_chunk_shift
            Steps between the end of the input and the start of the output chunk.
        backbone
            Checkpoint in MOMENT layout: ``None`` for the embedded pretrained default, a
            local folder, or a hub id such as ``"AutonLab/MOMENT-1-large"``.
        adapter
            ``"gated_dsic"`` (TRACE), ``"lora"`` / ``"adalora"`` (PEFT), ``"full"``
            fine-tuning, or ``"none"`` (frozen backbone; with ``head="linear"``: linear
            probing). This, not ``enable_finetuning``, decides which parameters train.
        head
            ``"reconstruction"`` (TRACE) or ``"linear"`` (MOMENT's linear-probing head).
        lora_rank
            Rank of every LoRA module.
        lora_targets
            Encoder linear layers that get adapters; ``None`` means every ``q, k, v, o,
            wi_0, wi_1, wo``.
        dsic_budget
            Gated modules kept at the end (fraction or count).
        dsic_interval
            Optimiser steps between two importance evaluations.
        dsic_draws
            Monte-Carlo gate-mask draws per evaluation.
        dsic_warmup
            Fraction of training (or step count) before the first selection.
        dsic_final
            Fraction of training (or step) at which the selection freezes.
        temporal_map
            Temporal map of the reconstruction head: ``"linear"``, ``"truncate"``,
            ``"pool"`` or ``"dwconv"``.
        head_init
            ``"ridge"`` (closed-form start of the head) or ``"default"``.
        reconstruction_weight
            ``lambda`` of the joint loss ``forecast + lambda * masked reconstruction``.
        validation_fraction
            Share of every training series held out when :func:`fit()` gets no
            ``val_series`` (0 trains on everything; Gated DSIC then scores training batches).
        batch_size
            Windows per training step. Default: ``32``.
        n_epochs
            Training epochs. Default: ``3``.
        random_state
            Seed of the new weights and of training.
        **kwargs
            Darts' :class:`TorchForecastingModel` parameters: ``optimizer_cls``,
            ``optimizer_kwargs`` (default ``{"lr": 1e-4}``), ``lr_scheduler_cls``,
            ``lr_scheduler_kwargs``, ``torch_metrics``, ``model_name``, ``work_dir``,
            ``log_tensorboard``, ``nr_epochs_val_period``, ``force_reset``,
            ``save_checkpoints``, ``add_encoders`` (ignored: no covariates),
            ``pl_trainer_kwargs`` (e.g. ``{"accelerator": "gpu", "devices": 2,
            "precision": "bf16-mixed"}``) and ``show_warnings``. ``likelihood``,
            ``loss_fn``, ``use_reversible_instance_norm`` and ``enable_finetuning`` are
            fixed by the method and rejected.

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
        for key, why in _REJECTED.items():
            if kwargs.get(key) not in (None, False):
                raise ValueError(f"TraceModel does not accept `{key}`: {why}")
        if kwargs.get("enable_finetuning") not in (None, True):
            raise ValueError(
                "TraceModel always fine-tunes; choose what trains with `adapter` "
                "('gated_dsic', 'lora', 'adalora', 'full' or 'none')"
            )
        _, max_icl = _parse_input_chunk_length(input_chunk_length)
        if max_icl > MAX_INPUT_CHUNK_LENGTH:
            raise ValueError(
                f"input_chunk_length {max_icl} is longer than the backbone's context of {MAX_INPUT_CHUNK_LENGTH}"
            )
        if not 1 <= output_chunk_length + output_chunk_shift <= MAX_OUTPUT_CHUNK_LENGTH:
            raise ValueError(
                f"output_chunk_length + output_chunk_shift must be between 1 and {MAX_OUTPUT_CHUNK_LENGTH} "
                f"(the longest direct forecast of the head), got {output_chunk_length + output_chunk_shift}; "
                "longer horizons are auto-regressive: predict(n) with n > output_chunk_length"
            )
        if adapter not in ADAPTERS:
            raise ValueError(f"adapter must be one of {ADAPTERS}, got {adapter!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {head!r}")
        if temporal_map not in TEMPORAL_MAPS:
            raise ValueError(f"temporal_map must be one of {TEMPORAL_MAPS}, got {temporal_map!r}")
        if head_init not in ("ridge", "default"):
            raise ValueError(f"head_init must be 'ridge' or 'default', got {head_init!r}")
        if not 0 <= validation_fraction < 1:
            raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
        # Fine-tuning is the method; `adapter` has already frozen what must not train.
        self.model_params["enable_finetuning"] = True
        super().__init__(**kwargs)
        self.pl_module_params.update(
            backbone=backbone,
            adapter=adapter,
            head=head,
            lora_rank=lora_rank,
            lora_targets=None if lora_targets is None else list(lora_targets),
            temporal_map=temporal_map,
            head_init=head_init,
            reconstruction_weight=reconstruction_weight,
            network_seed=0 if random_state is None else int(random_state),
        )
        self.pl_module_params.pop("enable_finetuning", None)
        if self.pl_module_params.get("optimizer_kwargs") is None:
            self.pl_module_params["optimizer_kwargs"] = {"lr": DEFAULT_LEARNING_RATE}

    # ------------------------------------------------------------------ Darts hooks
    @property
    def supports_past_covariates(self) -> bool:
        return False

    @property
    def supports_future_covariates(self) -> bool:
        return False

    @property
    def supports_static_covariates(self) -> bool:
        return False

    @property
    def supports_multivariate(self) -> bool:
        return True

    def _create_model(self, train_sample: TorchTrainingSample) -> TraceModule:
        return TraceModule(**self.pl_module_params)

    def _setup_finetuning(self, model: TraceModule) -> None:
        """Keep the trainable set that ``adapter`` chose (Darts' flag would unfreeze all)."""

    def _selection_settings(self) -> TrainSettings:
        p = self.model_params
        return TrainSettings(random_state=p["random_state"], dsic=DSICSettings.from_params(p))

    def _setup_trainer(self, trainer, model, verbose=None, epochs: int = 0) -> pl.Trainer:
        """Darts' trainer plus TRACE's callbacks (Gated DSIC or AdaLoRA's allocator)."""
        extra = engine_callbacks(model.network, self._selection_settings())
        if trainer is not None:
            present = {type(cb) for cb in trainer.callbacks}
            trainer.callbacks.extend(cb for cb in extra if type(cb) not in present)
            return trainer
        saved = self.trainer_params
        params = {**saved, "callbacks": [*saved.get("callbacks", []), *extra]}
        if params.get("strategy") == "ddp" and model.network.gated_lora is not None:
            # Gated DSIC stops training pruned modules; DDP must not wait for their gradients.
            params["strategy"] = "ddp_find_unused_parameters_true"
        self.trainer_params = params
        try:
            return super()._setup_trainer(None, model, verbose, epochs)
        finally:
            self.trainer_params = saved

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
        if val_series is not None:
            check_series(val_series, "val_series", need)
        if kwargs.get("sample_weight") is not None or kwargs.get("val_sample_weight") is not None:
            raise ValueError("TraceModel does not support sample weights")
        given = series
        if val_series is None and self.model_params["validation_fraction"] > 0:
            series, val_series = split_for_validation(
                series, self.model_params["validation_fraction"], need, self.input_chunk_length
            )
        super().fit(series, past_covariates, future_covariates, val_series, *args, **kwargs)
        if isinstance(given, TimeSeries):  # predict() continues the whole series, not its training part
            self.training_series = given
        return self

    def predict(self, n: int, series=None, *args, **kwargs):
        """Forecast ``n`` steps after the end of each series (see Darts' ``predict``)."""
        if series is not None:
            check_series(series, "series", self.min_input_chunk_length)
        return super().predict(n, series, *args, **kwargs)

    def historical_forecasts(self, series, *args, **kwargs):
        check_series(series, "series", self.min_input_chunk_length)
        return super().historical_forecasts(series, *args, **kwargs)

    @property
    def network(self):
        """The adapted :class:`~trace_forecast.network.TraceNetwork` (after fitting)."""
        return None if self.model is None else self.model.network

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


# Darts loads saved models through a restricted unpickler; these are our safe classes.
add_safe_globals([TraceModel, TraceModule])

__all__ = ["DEFAULT_TARGETS", "TraceModel"]
