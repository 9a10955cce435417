"""The one LightningModule that trains every mode (TRACE, LoRA, AdaLoRA, full, probing).

The loss is defined once, in :meth:`TraceLightningModule.compute_loss`, and reused by
training, validation and the Gated DSIC importance estimate.
"""

from __future__ import annotations

import pytorch_lightning as pl
import torch

from trace_forecast.engine.recipe import recipe_optimizers
from trace_forecast.engine.settings import WEIGHT_DECAY
from trace_forecast.network import TraceNetwork
from trace_forecast.parameters import default

SMALL_FROZEN = 16  # elements: a frozen tensor this small is kept in checkpoints (a rank count, not a weight)


class TraceLightningModule(pl.LightningModule):
    """Train a :class:`TraceNetwork` with the shared recipe (:mod:`trace_forecast.engine.recipe`).

    Parameters
    ----------
    network : TraceNetwork
        The model to train; only parameters with ``requires_grad`` are optimised.
    learning_rate : float
        Peak learning rate of the one-cycle schedule.
    weight_decay : float
        AdamW weight decay.
    reconstruction_weight : float
        ``lambda`` of the multi-task loss ``forecast + lambda * masked reconstruction``
        (forecasting networks only; reconstruction networks use only the latter; the
        reconstruction term scores hidden steps only).
    mask_ratio : float
        Fraction of patches hidden by the masked-reconstruction loss.
    visible_weight : float
        Weight of the visible patches in reconstruction fine-tuning (0: MOMENT's
        hidden-only objective, what the masked anomaly scores need).
    mask_scheme : (str, int) or None
        Reconstruction masks drawn from an anomaly score's family (``None``: a random
        ``mask_ratio`` of patches).
    total_steps : int or None
        Optimiser steps of the whole fit (the one-cycle schedule's length); ``None``:
        Lightning's ``estimated_stepping_batches``.
    """

    def __init__(
        self,
        network: TraceNetwork,
        learning_rate: float = default("learning_rate"),
        weight_decay: float = WEIGHT_DECAY,
        reconstruction_weight: float = 0.0,
        mask_ratio: float = default("mask_ratio"),
        visible_weight: float = 1.0,
        mask_scheme: tuple[str, int] | None = None,
        total_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.network = network
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.reconstruction_weight = reconstruction_weight
        self.mask_ratio = mask_ratio
        self.visible_weight = visible_weight
        self.mask_scheme = mask_scheme
        self.total_steps = total_steps  # the schedule's length; None: Lightning's estimate
        self.loss_weighting = "fit"  # how windows weigh in training (the head start may choose "series units")
        self.fit_key: str | None = None  # set when the fit writes resumable checkpoints (engine.resume)
        self.strict_loading = False  # checkpoints hold what training changes, not the frozen backbone
        # What a checkpoint keeps: the trainable tensors, the buffers (gate masks) and small frozen
        # tensors that training may still change (AdaLoRA's rank counts), not the pretrained weights.
        self._changing = {f"network.{n}" for n, p in network.named_parameters()
                          if p.requires_grad or p.numel() <= SMALL_FROZEN} | {
            f"network.{n}" for n, _ in network.named_buffers()}

    @property
    def is_forecaster(self) -> bool:
        return self.network.spec.task == "forecast"

    @staticmethod
    def windows_in(batch) -> int:
        """Windows in a batch (each one univariate)."""
        return len(batch[0])

    def compute_loss(self, batch, weighting: str | None = None) -> torch.Tensor:
        """The training objective on one batch, its windows weighted as ``loss_weighting``
        says (set by the head start's choice); ``weighting="series units"`` weighs forecast
        errors in each series' own units (the validation loss that chooses the state kept)."""
        if self.is_forecaster:
            x, input_mask, y = batch[:3]
            loss = self.network.forecast_loss(x, input_mask, y, batch[3] if len(batch) > 3 else None,
                                              weighting or self.loss_weighting)
            if self.reconstruction_weight > 0:
                loss = loss + self.reconstruction_weight * self.network.masked_reconstruction_loss(
                    x, input_mask, self.mask_ratio, scheme=self.mask_scheme
                )
            return loss
        x, input_mask = batch[0], batch[1]
        return self.network.masked_reconstruction_loss(
            x, input_mask, self.mask_ratio, visible_weight=self.visible_weight, scheme=self.mask_scheme
        )

    def forward(self, x: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        return self.network(x, input_mask)

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(batch)
        self.log("train_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch[0]))
        self.log("loss", loss, on_step=True, on_epoch=False, prog_bar=True, logger=False)  # the progress bar's
        return loss

    def validation_step(self, batch, batch_idx: int) -> torch.Tensor:
        loss = self.compute_loss(batch, weighting="series units")
        self.log("val_loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=len(batch[0]), sync_dist=True)
        return loss

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Keep what the fit may change (the tensors trainable when it started, the buffers
        such as gate masks), not the frozen backbone, and the fit's key."""
        from trace_forecast.engine.resume import KEY_FIELD

        checkpoint["state_dict"] = {k: v for k, v in checkpoint["state_dict"].items() if k in self._changing}
        checkpoint[KEY_FIELD] = self.fit_key

    def configure_optimizers(self):
        # Lightning's estimate sets the training data up, before a resumed fit has restored its
        # position in it: the engine passes the count it knows instead.
        total = self.total_steps if self.total_steps is not None else self.trainer.estimated_stepping_batches
        return recipe_optimizers(self.network.parameters(), self.learning_rate, total, self.weight_decay)
