"""The Lightning module of :class:`~trace_forecast.darts.TraceModel`: a Darts
``PLForecastingModule`` around a :class:`~trace_forecast.network.TraceNetwork`.

Darts hands the module batches of ``past_target [B, L, C]`` (left-padded with NaN when
the model accepts variable-length inputs); channels are forecast independently, as in
MOMENT, so they become ``B * C`` univariate windows with a MOMENT ``input_mask``. The
loss is TRACE's (forecast MSE in each window's RevIN space, plus optional masked
reconstruction) and is defined once, in :meth:`TraceModule.compute_loss`, which Gated
DSIC also calls for its importance estimate.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from darts.models.forecasting.pl_forecasting_module import (
    PLForecastingModule,
    io_processor,
)
from darts.utils.data.torch_datasets.utils import (
    ModuleStage,
    PLModuleInput,
    PLModuleOutput,
    TorchTrainingBatch,
)
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, Subset

from trace_forecast.backbone.glitches import target_without_glitches
from trace_forecast.darts.covariates import batch_corrections
from trace_forecast.darts.windows import SubsampledTrainingDataset
from trace_forecast.engine.batching import inference_batch_size
from trace_forecast.engine.precision import prediction_autocast
from trace_forecast.engine.recipe import limited, recipe_optimizers
from trace_forecast.engine.settings import WEIGHT_DECAY
from trace_forecast.engine.threads import limit_worker_threads
from trace_forecast.heads import reconstruction
from trace_forecast.heads import ridge as head_start_sizes  # read at each fit (tests shrink them)
from trace_forecast.losses import normalized_mse
from trace_forecast.network import build_network
from trace_forecast.parameters import default
from trace_forecast.tasks.scoring import JOINT_MASKS
from trace_forecast.tasks.setup import backbone_for, network_spec


def channel_windows(past_target: torch.Tensor, context_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, L, C]`` -> ``x [B*C, 1, context]`` and ``input_mask [B*C, context]``, left-padded
    (or cut) to ``context_length``. Leading NaN are padding (Darts pads variable-length
    inputs with NaN on the left; ``input_mask`` 0); a NaN after the first observed value is a
    missing value and stays NaN, for the backbone to mask."""
    b, length, c = past_target.shape
    x = past_target.permute(0, 2, 1).reshape(b * c, length)
    mask = torch.isfinite(x).to(x.dtype).cummax(dim=-1).values
    x = torch.where(mask.bool(), x, torch.zeros((), dtype=x.dtype, device=x.device))
    if length < context_length:
        pad = context_length - length
        x = torch.nn.functional.pad(x, (pad, 0))
        mask = torch.nn.functional.pad(mask, (pad, 0))
    elif length > context_length:
        x, mask = x[:, -context_length:], mask[:, -context_length:]
    return x[:, None, :], mask


def channel_targets(future_target: torch.Tensor) -> torch.Tensor:
    """``[B, H, C]`` -> ``[B*C, 1, H]``, in the order of :func:`channel_windows`."""
    b, h, c = future_target.shape
    return future_target.permute(0, 2, 1).reshape(b * c, 1, h)


def channel_units(sample_weight: torch.Tensor | None) -> torch.Tensor | None:
    """Each window's series unit ``[B*C]``, in the order of :func:`channel_windows`, from
    the sample weights ``[B, H, C]`` in which :class:`~trace_forecast.darts.TraceModel`
    passes them (constant over the output chunk); ``None`` without them."""
    if sample_weight is None:
        return None
    return sample_weight[:, 0, :].reshape(-1)


class TraceModule(PLForecastingModule):
    """Backbone + gated LoRA (or another adapter mode) + forecasting head, for Darts.

    Parameters
    ----------
    backbone, adapter, head, lora_rank, lora_targets, temporal_map, future_patches
        As in :class:`~trace_forecast.TraceForecaster`.
    head_init : {"ridge", "default"}
        ``"ridge"`` solves the head's output layer in closed form on up to
        ``RIDGE_WINDOWS`` training windows when training starts (LP-FT; the recipe's
        :class:`~trace_forecast.engine.recipe.ClosedFormHeadStart` callback).
    reconstruction_weight : float
        ``lambda`` of ``forecast + lambda * masked reconstruction`` (0: forecasting only;
        the model passes its ``reconstruction_weight`` when ``multitask=True``). The
        reconstruction hides patches as the anomaly score does (``JOINT_MASKS``).
    mask_ratio : float
        Fraction of patches hidden by the reconstruction loss.
    network_seed : int
        Seed of the new weights (LoRA ``A``, head).
    recipe_optimizer : bool
        Train with the recipe's AdamW + one-cycle schedule (``False``: Darts'
        ``optimizer_cls`` / ``lr_scheduler_cls`` as the user gave them).
    zero_shot : bool
        Forecast with the pretrained backbone alone (``TraceModel(enable_finetuning=False)``):
        the head reads the backbone's prediction of the hidden future patches and nothing trains.
    **kwargs
        Darts' :class:`PLForecastingModule` parameters.
    """

    def __init__(
        self,
        backbone=None,
        adapter: str = default("adapter"),
        head: str = default("head"),
        lora_rank: int = default("lora_rank"),
        lora_targets=default("lora_targets"),
        temporal_map: str = default("temporal_map"),
        future_patches: int | str = default("future_patches"),
        head_init: str = default("head_init"),
        reconstruction_weight: float = 0.0,
        mask_ratio: float = default("mask_ratio"),
        network_seed: int = 0,
        recipe_optimizer: bool = True,
        zero_shot: bool = False,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        base = backbone_for(backbone, self.input_chunk_length, "input_chunk_length")
        self.context_length = self.input_chunk_length
        spec = network_spec("forecast", base.patch_len, self.output_chunk_length + self.output_chunk_shift,
                            context_length=self.context_length, adapter=adapter, head=head,
                            lora_rank=lora_rank, lora_targets=lora_targets, temporal_map=temporal_map,
                            future_patches=future_patches)
        if zero_shot:
            spec.adapter, spec.sign_symmetric = "none", reconstruction.SIGN_SYMMETRIC_ZERO_SHOT
        self.network = build_network(base, spec, seed=network_seed)
        if zero_shot:
            reconstruction.use_zero_shot_map(self.network)
            head_init = "default"
        self.head_init = head_init
        self.reconstruction_weight = reconstruction_weight
        self.loss_weighting = "fit"  # how windows weigh in training (the head start may choose "series units")
        self.mask_ratio = mask_ratio
        self.network_seed = network_seed
        self.recipe_optimizer = recipe_optimizer
        # Persisted with the weights, so continued training does not redo the closed-form start;
        # a shifted output chunk has no targets for its gap, so there is no closed form.
        self.register_buffer("head_initialised", torch.tensor(head_init != "ridge" or self.output_chunk_shift > 0))
        # Conformal quantile offsets [levels, output_chunk_length] in RevIN units, with a
        # QuantileRegression likelihood (TraceModel calibrates them after fitting).
        levels = getattr(self.likelihood, "quantiles", None) or []
        self.register_buffer("interval_offsets", torch.zeros(len(levels), self.output_chunk_length))

    def setup(self, stage: str) -> None:
        """Before Darts' trainer fits or predicts: a pool worker uses its share of the cores."""
        super().setup(stage)
        limit_worker_threads()

    def predict_step(self, batch, batch_idx: int, dataloader_idx: int | None = None):
        """Darts' prediction step with the gated LoRA updates merged (:meth:`TraceNetwork.inference`:
        the same forecasts, faster), in bf16 where the CPU has it natively
        (:func:`~trace_forecast.engine.precision.prediction_autocast`); merged per batch, so
        an error mid-prediction never leaves them merged."""
        with self.network.inference(), prediction_autocast(self.device):
            return super().predict_step(batch, batch_idx, dataloader_idx)

    # ------------------------------------------------------------------ forward and loss
    def _forecast_normalized(self, past_target: torch.Tensor):
        x, mask = channel_windows(past_target, self.context_length)
        if torch.is_grad_enabled():
            pred, mean, std = self.network.forecast_normalized(x, mask)
        else:  # prediction and validation: cache-sized chunks (a batch holds samples x channels windows)
            size = inference_batch_size(x.device)
            parts = [self.network.forecast_normalized(x[i : i + size], mask[i : i + size])
                     for i in range(0, len(x), size)]
            pred, mean, std = (torch.cat(t) for t in zip(*parts, strict=True))
        return x, mask, pred[..., self.output_chunk_shift :], mean, std

    @io_processor
    def forward(self, x_in: PLModuleInput) -> PLModuleOutput:
        b, _, c = x_in.past_target.shape
        _, _, pred, mean, std = self._forecast_normalized(x_in.past_target)
        covariate_map = getattr(self, "covariate_map", None)
        if covariate_map is not None:  # the model was fitted with covariates (TraceModel attaches the head)
            pred = pred + batch_corrections(covariate_map, x_in.past_target, x_in.past_covariates,
                                            x_in.historic_future_covariates, x_in.future_covariates, pred, mean,
                                            std)[:, None, :]
        if self.likelihood is not None:  # one output per quantile level: [B*C, levels, H]
            pred = pred + self.interval_offsets.to(pred.dtype)[None]
        out = self.network.backbone.normalizer.denormalize(pred, mean, std)  # [B*C, levels or 1, H]
        out = out.reshape(b, c, out.shape[1], -1).permute(0, 3, 1, 2).to(x_in.past_target.dtype)
        return PLModuleOutput(prediction=out)  # [B, H, C, levels or 1]

    @staticmethod
    def windows_in(batch: TorchTrainingBatch) -> int:
        """Univariate windows in a Darts batch: samples times channels."""
        return batch.past_target.shape[0] * batch.past_target.shape[-1]

    def compute_loss(self, batch: TorchTrainingBatch, weighting: str | None = None) -> torch.Tensor:
        """The training objective on one Darts batch, windows weighted as ``loss_weighting``
        says (set by the head start's choice; ``weighting="series units"``: the validation
        loss, in each series' own units)."""
        x, mask, pred, mean, std = self._forecast_normalized(batch.past_target)
        target = target_without_glitches(x, mask, channel_targets(batch.future_target), self.network.patch_len)
        loss = normalized_mse(pred, target, mean, std,
                              scale=channel_units(batch.sample_weight), weighting=weighting or self.loss_weighting)
        if self.reconstruction_weight > 0:
            loss = loss + self.reconstruction_weight * self.network.masked_reconstruction_loss(
                x, mask, self.mask_ratio, scheme=JOINT_MASKS)
        return loss

    def _train_val_step(self, batch: TorchTrainingBatch, stage: ModuleStage, criterion, metrics) -> torch.Tensor:
        loss = self.compute_loss(batch, None if stage == ModuleStage.TRAIN else "series units")
        self.log(f"{stage.value}_loss", loss, batch_size=batch.past_target.shape[0], prog_bar=True, sync_dist=True)
        if len(metrics):
            self._update_metrics(self(batch.to_module_input(stage=stage)), batch.future_target, metrics)
        return loss

    # ------------------------------------------------------------------ the shared recipe
    def configure_optimizers(self):
        """The recipe's AdamW + one-cycle schedule, unless the user chose Darts' own
        ``optimizer_cls`` / ``lr_scheduler_cls``."""
        if not self.recipe_optimizer:
            return super().configure_optimizers()
        lr = self.optimizer_kwargs.get("lr", default("learning_rate"))
        weight_decay = self.optimizer_kwargs.get("weight_decay", WEIGHT_DECAY)
        return recipe_optimizers(self.network.parameters(), lr, self.trainer.estimated_stepping_batches, weight_decay)

    def head_start_validation_batches(self) -> Iterator[tuple[torch.Tensor, ...]] | None:
        """``(x, input_mask, y, unit)`` windows of the validation samples (up to
        ``RIDGE_VALIDATION_WINDOWS``) that choose the closed-form start; ``None`` without
        validation data."""
        loaders = self.trainer.val_dataloaders
        if loaders is None:
            try:
                self.trainer.fit_loop.epoch_loop.val_loop.setup_data()
                loaders = self.trainer.val_dataloaders
            except MisconfigurationException:
                return None
        if not loaders:
            return None
        loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
        strategy = self.trainer.strategy

        def windows():
            for batch in loader:
                batch = strategy.batch_to_device(batch)
                x, mask = channel_windows(batch.past_target, self.context_length)
                units = channel_units(batch.sample_weight)
                yield (x.float(), mask.float(), channel_targets(batch.future_target).float(),
                       *(() if units is None else (units.float(),)))

        return limited(windows(), head_start_sizes.RIDGE_VALIDATION_WINDOWS)

    def head_start_batches(self) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(x, input_mask, y, unit)`` windows for the closed-form head start: up to
        ``RIDGE_WINDOWS`` of them from all training samples (not only this epoch's subset).

        As many distinct samples (time positions) as possible: with more samples than
        ``RIDGE_WINDOWS``, one random channel of each; otherwise enough channels of each
        sample. (All channels of a few samples share their time positions and gave a
        worse head: ETTh1 test MSE 0.378 against 0.374.)
        """
        loader = self.trainer.train_dataloader
        dataset = loader.dataset
        pool = dataset.pool if isinstance(dataset, SubsampledTrainingDataset) else dataset
        generator = torch.Generator().manual_seed(self.network_seed + 2)
        n = min(len(pool), head_start_sizes.RIDGE_WINDOWS)
        rows = torch.randperm(len(pool), generator=generator)[:n].sort().values
        channels = pool[0].past_target.shape[-1]
        per_sample = min(channels, -(-head_start_sizes.RIDGE_WINDOWS // n))
        batch_size = max(1, inference_batch_size(self.device) // per_sample)
        subset = DataLoader(Subset(pool, rows.tolist()), batch_size=batch_size, collate_fn=loader.collate_fn)
        strategy = self.trainer.strategy

        def windows():
            for batch in subset:
                batch = strategy.batch_to_device(batch)
                x, mask = channel_windows(batch.past_target, self.context_length)
                y = channel_targets(batch.future_target)
                b = batch.past_target.shape[0]
                pick = torch.rand(b, channels, generator=generator).argsort(dim=1)[:, :per_sample]
                keep = (torch.arange(b)[:, None] * channels + pick).reshape(-1).to(x.device)
                units = channel_units(batch.sample_weight)
                yield (x[keep].float(), mask[keep].float(), y[keep].float(),
                       *(() if units is None else (units[keep].float(),)))

        return limited(windows(), head_start_sizes.RIDGE_WINDOWS)
