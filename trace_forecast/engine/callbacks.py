"""Small Lightning callbacks of the training engine (the recipe's are in ``recipe``,
Gated DSIC in ``selection``)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback


class LossHistory(Callback):
    """Record the epoch-mean training and validation loss.

    The training mean is accumulated here, as Lightning's ``on_epoch`` logging does
    (``sum(loss * windows) / windows``, in float32), because Lightning does not restore a
    running epoch mean when a fit resumes mid-epoch; this one is in the checkpoint.
    """

    def __init__(self) -> None:
        self.train: list[float] = []
        self.val: list[float] = []
        self._epoch: int | None = None
        self._sum = torch.zeros(())
        self._windows = torch.zeros(())

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if self._epoch != trainer.current_epoch:
            self._epoch, self._sum, self._windows = trainer.current_epoch, torch.zeros(()), torch.zeros(())
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        windows = len(batch[0])
        self._sum = self._sum + loss.detach().float().mean().cpu() * windows
        self._windows = self._windows + windows

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        if self._epoch == trainer.current_epoch and float(self._windows) > 0:
            self.train.append(float(self._sum / self._windows))

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        if "val_loss" in metrics:
            self.val.append(float(metrics["val_loss"]))

    def state_dict(self) -> dict:
        return {"train": list(self.train), "val": list(self.val), "epoch": self._epoch, "sum": self._sum,
                "windows": self._windows}

    def load_state_dict(self, state_dict: dict) -> None:
        self.train, self.val = list(state_dict["train"]), list(state_dict["val"])
        self._epoch, self._sum, self._windows = state_dict["epoch"], state_dict["sum"], state_dict["windows"]
