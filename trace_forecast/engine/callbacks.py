"""Small Lightning callbacks of the training engine (the recipe's are in ``recipe``,
Gated DSIC in ``selection``)."""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback


class LossHistory(Callback):
    """Record the epoch-mean training and validation loss."""

    def __init__(self) -> None:
        self.train: list[float] = []
        self.val: list[float] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        if "train_loss" in metrics:
            self.train.append(float(metrics["train_loss"]))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if "val_loss" in metrics:
            self.val.append(float(metrics["val_loss"]))
