"""TRACE's training recipe, shared by both Lightning modules (the package's engine and
the Darts model's), so the same data, seed and settings train the same way in sktime
and in Darts.

- Optimiser and schedule: AdamW on the trainable parameters with a one-cycle learning
  rate (:func:`recipe_optimizers`).
- Gradient clipping by norm (a trainer setting). This and the other fixed values (weight
  decay, early-stopping patience) live in :mod:`trace_forecast.engine.settings`.
- Closed-form head start (:class:`ClosedFormHeadStart`): the head's output layer is
  solved by ridge regression on frozen-backbone features before the first step (LP-FT).
- Early stopping on validation loss, and the state with the lowest validation loss kept
  (:class:`BestOnValidation`): the head start competes too, so fine-tuning never ends
  worse on validation than its start.
- AdaLoRA's step timing and rank allocation (:class:`AdaLoraAllocator`).
- Gated DSIC (:class:`~trace_forecast.selection.GatedDSIC`).

:func:`recipe_callbacks` lists the callbacks a network needs; a module joins the recipe
by implementing ``compute_loss(batch)`` (Gated DSIC's loss) and, unless its head start is
given a dataset, ``head_start_batches()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping
from pytorch_lightning.utilities.exceptions import MisconfigurationException
from torch.utils.data import DataLoader, Dataset, Subset

from trace_forecast.adapters.peft_adapters import set_adalora_steps
from trace_forecast.engine.batching import inference_batch_size
from trace_forecast.engine.precision import head_start_features
from trace_forecast.engine.settings import EARLY_STOPPING_PATIENCE, WEIGHT_DECAY, TrainSettings
from trace_forecast.heads.ridge import (
    MIN_VALIDATION_WINDOWS,
    HeadStart,
    RidgeStatistics,
    ridge_applicable,
    ridge_solve,
    ridge_statistics,
    too_little_validation,
)
from trace_forecast.losses import WEIGHTINGS
from trace_forecast.selection import GatedDSIC

WARMUP_SHARE = 0.3  # share of the one-cycle schedule spent rising to the peak learning rate

if TYPE_CHECKING:
    from trace_forecast.network import TraceNetwork

HeadBatch = tuple[torch.Tensor, ...]  # (x, input_mask, y) or (x, input_mask, y, series scale)


def recipe_optimizers(parameters: Iterable[torch.nn.Parameter], learning_rate: float, total_steps: int,
                      weight_decay: float = WEIGHT_DECAY) -> dict:
    """AdamW and a per-step one-cycle schedule, in Lightning's ``configure_optimizers`` form."""
    params = [p for p in parameters if p.requires_grad]
    if not params:
        raise ValueError("nothing to train: every parameter is frozen (adapter='none' needs a head)")
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=max(int(total_steps), 2), pct_start=WARMUP_SHARE
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def early_stopping(patience: int = EARLY_STOPPING_PATIENCE) -> EarlyStopping:
    return EarlyStopping("val_loss", patience=patience, mode="min")


class ClosedFormHeadStart(Callback):
    """Solve the head's output layer in closed form when training starts (LP-FT).

    Features come from ``dataset`` when given (the engine passes more windows than one
    epoch trains on: forward passes are cheap), else from the module's
    ``head_start_batches()`` (the Darts module, which draws from Darts' samples). Under data
    parallelism every rank solves the same system: the engine's dataset is the same on every
    rank, and the Darts module's per-rank sums are all-reduced. A module with a
    ``head_initialised`` buffer is skipped when it is already set (continued training) and
    marked afterwards. Validation windows -- ``validation`` (the engine's) or the module's
    ``head_start_validation_batches()`` (Darts' validation samples) -- choose the penalty
    and the blend with the zero-shot map and join the solve
    (:func:`~trace_forecast.heads.ridge.ridge_solve`); ``choice`` records what was chosen.
    ``like_the_forecast``, where given, holds the positions in ``dataset`` of the windows
    whose context is like the forecast's (on short series, not all of them): the last value's
    share reads those. They and the rest are summed apart and added, so each window's
    features are computed once.
    """

    def __init__(self, dataset: Dataset | None = None, batch_size: int | None = None,
                 validation: Dataset | None = None, validation_requested: bool = False,
                 like_the_forecast: Sequence[int] | None = None) -> None:
        if like_the_forecast is not None and dataset is None:
            raise ValueError("like_the_forecast holds positions in the head start's dataset: give one")
        self.dataset = dataset
        self.validation = validation
        self.like_the_forecast = like_the_forecast
        self.validation_requested = validation_requested or validation is not None
        self.batch_size = batch_size
        self.choice: HeadStart | None = None
        self._resumed = False

    def state_dict(self) -> dict:
        return {"choice": None if self.choice is None else dataclasses.asdict(self.choice)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resuming: the head was solved before the checkpoint (its tensors are restored)."""
        choice = state_dict.get("choice")
        self.choice = None if choice is None else HeadStart(**choice)
        self._resumed = True

    def _batches(self, trainer: pl.Trainer, pl_module) -> Iterator[HeadBatch]:
        if self.dataset is None:
            yield from pl_module.head_start_batches()
            return
        yield from self._loader(self.dataset, pl_module)

    def _loader(self, dataset: Dataset, pl_module) -> Iterator[HeadBatch]:
        batch_size = self.batch_size or inference_batch_size(pl_module.device)
        for batch in DataLoader(dataset, batch_size=batch_size):
            yield tuple(t.to(pl_module.device) for t in batch)

    def _training_statistics(self, trainer: pl.Trainer, pl_module, features
                             ) -> tuple[dict[str, RidgeStatistics], RidgeStatistics | None]:
        """Both weightings' sums over the training windows, and the series-unit sums over
        those like the forecast (``None`` where that is all of them)."""
        if self.like_the_forecast is None:
            stats = ridge_statistics(features, self._batches(trainer, pl_module), WEIGHTINGS)
            if self.dataset is None:
                stats = {w: all_reduced(trainer, pl_module, s) for w, s in stats.items()}
            return stats, None
        alike_positions = np.asarray(self.like_the_forecast, dtype=np.int64)
        rest_positions = np.setdiff1d(np.arange(len(self.dataset)), alike_positions)
        alike, rest = (ridge_statistics(features, self._loader(Subset(self.dataset, positions.tolist()), pl_module),
                                        WEIGHTINGS) for positions in (alike_positions, rest_positions))
        return {w: alike[w] + rest[w] for w in WEIGHTINGS}, alike["series units"]

    def _validation_batches(self, pl_module) -> Iterator[HeadBatch] | None:
        if self.validation is not None:
            return self._loader(self.validation, pl_module) if len(self.validation) else None
        if self.dataset is None and hasattr(pl_module, "head_start_validation_batches"):
            return pl_module.head_start_validation_batches()
        return None

    @torch.no_grad()
    def on_train_start(self, trainer: pl.Trainer, pl_module) -> None:
        flag = getattr(pl_module, "head_initialised", None)
        network = pl_module.network
        if self._resumed:
            if self.choice is not None and hasattr(pl_module, "loss_weighting"):
                pl_module.loss_weighting = self.choice.weighting
            return
        if (flag is not None and bool(flag)) or not ridge_applicable(network):
            return
        dtype = next(network.parameters()).dtype
        network.float()
        validation = selection = None
        with frozen_backbone(network), head_start_features(network, pl_module.device) as features:
            batches = self._validation_batches(pl_module)
            if batches is None and self.validation_requested:  # asked for, but the series were too short
                batches = []
            if batches is not None:  # weighed as training weighs (to join the solve) and in series units
                both = ridge_statistics(features, batches, ("fit", "series units"))
                validation, selection = both["fit"], both["series units"]
                if self.dataset is None:  # each rank read its share: add them up
                    validation, selection = (all_reduced(trainer, pl_module, s) for s in (validation, selection))
            # both weightings of the windows, in one pass: validation chooses between them
            stats, alike = self._training_statistics(trainer, pl_module, features)
            if validation is not None and too_little_validation(network, validation):
                # nothing to choose on validation; the last value's share reads the windows (those like the forecast)
                self.choice = ridge_solve(network, stats, validation=validation, selection=selection,
                                          like_the_forecast=alike)
            elif stats["fit"].windows > 0:
                candidates = stats if validation is not None else stats["fit"]
                joined = None if validation is None else {"fit": validation, "series units": selection}
                self.choice = ridge_solve(network, candidates, validation=joined, selection=selection,
                                          like_the_forecast=alike)
        if self.choice is not None and hasattr(pl_module, "loss_weighting"):
            pl_module.loss_weighting = self.choice.weighting  # training weighs windows as the start did
        network.to(dtype)
        if flag is not None:
            flag.fill_(True)


def all_reduced(trainer: pl.Trainer, pl_module, stats: RidgeStatistics) -> RidgeStatistics:
    """``stats`` summed over the data-parallel ranks (each read its own share of the windows)."""
    return RidgeStatistics(*(trainer.strategy.reduce(t.to(pl_module.device), reduce_op="sum").cpu()
                             for t in stats.tensors()))


def validation_loss(trainer: pl.Trainer, pl_module) -> tuple[float | None, int]:
    """The module's loss averaged over the validation windows, and how many there were
    (``(None, 0)`` without any)."""
    loaders = trainer.val_dataloaders
    if loaders is None:  # the validation loop has not run yet
        try:
            trainer.fit_loop.epoch_loop.val_loop.setup_data()
            loaders = trainer.val_dataloaders
        except MisconfigurationException:
            return None, 0
    if not loaders:
        return None, 0
    loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
    network = pl_module.network
    was_training = network.training
    network.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for batch in loader:
            batch = trainer.strategy.batch_to_device(batch)
            n = pl_module.windows_in(batch)
            total += float(pl_module.compute_loss(batch, weighting="series units")) * n
            count += n
    network.train(was_training)
    if trainer.world_size > 1:
        total, count = (float(trainer.strategy.reduce(torch.tensor(v, device=pl_module.device), reduce_op="sum"))
                        for v in (total, count))
    return (total / count if count else None), int(count)


class BestOnValidation(Callback):
    """Keep the state with the lowest validation loss: the closed-form head start (measured
    when training starts) and every validation check after it. At the end of training the
    best state is restored; if that is the head start, everything but the forecasting head
    is frozen again and gated LoRA modules are switched off (they had not changed anything
    yet: LoRA's ``B`` starts at zero), so the fitted model and its trainable-parameter count
    are exactly the head start's. ``kept`` says which state was kept: ``"start"`` or
    ``"epoch N"``. With fewer than :data:`~trace_forecast.heads.ridge.MIN_VALIDATION_WINDOWS`
    validation windows (none at all, where the series were too short to hold any) there is
    no evidence that training helped, and the start is kept."""

    def __init__(self) -> None:
        self.best: float | None = None
        self.snapshot: dict | None = None
        self.kept: str | None = None
        self.start_loss: float | None = None
        self.decisive = True
        self._resumed = False

    def state_dict(self) -> dict:
        snapshot = None if self.snapshot is None else {k: [v, bool(t)] for k, (v, t) in self.snapshot.items()}
        return {"best": self.best, "kept": self.kept, "start_loss": self.start_loss, "decisive": self.decisive,
                "snapshot": snapshot}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resuming: the start was measured, and the best state so far comes back."""
        self.best, self.kept = state_dict["best"], state_dict["kept"]
        self.start_loss, self.decisive = state_dict["start_loss"], state_dict["decisive"]
        saved = state_dict["snapshot"]
        self.snapshot = None if saved is None else {k: (v, t) for k, (v, t) in saved.items()}
        self._resumed = True

    def on_train_start(self, trainer: pl.Trainer, pl_module) -> None:
        from trace_forecast.engine.snapshot import training_snapshot

        if self._resumed:
            trainer.should_stop = trainer.should_stop or not self.decisive
            return
        self.start_loss, windows = validation_loss(trainer, pl_module)
        self.decisive = windows >= MIN_VALIDATION_WINDOWS and self.start_loss is not None
        if not self.decisive:  # nothing could show that training helped: do not train
            self.kept, self.snapshot = "start", training_snapshot(pl_module.network)
            trainer.should_stop = True
            return
        self._offer(pl_module, self.start_loss, "start")

    def on_validation_end(self, trainer: pl.Trainer, pl_module) -> None:
        if trainer.sanity_checking or not self.decisive or "val_loss" not in trainer.callback_metrics:
            return
        self._offer(pl_module, float(trainer.callback_metrics["val_loss"]), f"epoch {trainer.current_epoch}")

    def _offer(self, pl_module, loss: float | None, label: str) -> None:
        if loss is None or not math.isfinite(loss) or (self.best is not None and loss >= self.best):
            return
        from trace_forecast.engine.snapshot import training_snapshot

        self.best, self.kept = loss, label
        self.snapshot = training_snapshot(pl_module.network)

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        if self.snapshot is None:
            return
        from trace_forecast.engine.snapshot import restore_snapshot

        network = pl_module.network
        restore_snapshot(network, self.snapshot)
        if self.kept == "start":
            if network.gated_lora is not None:
                network.gated_lora.switch_off()
            for name, parameter in network.named_parameters():
                if not name.startswith("forecast_head."):
                    parameter.requires_grad_(False)
        rewrite_last_checkpoints(trainer)


def rewrite_last_checkpoints(trainer: pl.Trainer) -> None:
    """Save the kept state over the latest checkpoint each checkpoint callback wrote (its
    ``last`` file, or the newest file of one that monitors nothing, as Darts' ``last-epoch``
    callback), so that loading it (Darts' ``load_from_checkpoint(best=False)``) gives the
    fitted model, not the last epoch's. Every rank calls it (``save_checkpoint`` is collective)."""
    paths = set()
    for callback in trainer.checkpoint_callbacks:
        paths.add(getattr(callback, "last_model_path", ""))
        if getattr(callback, "monitor", "") is None:
            paths.add(getattr(callback, "best_model_path", ""))
    for path in sorted(p for p in paths if p):
        trainer.save_checkpoint(path, weights_only=False)  # as the callback wrote it


@contextlib.contextmanager
def frozen_backbone(network) -> Iterator[None]:
    """The pretrained backbone without its adapters (LP-FT's frozen features; skipping
    the updates saves their compute, a fifth of the head start on the embedded backbone)."""
    lora = network.gated_lora
    tuner = network.peft_tuner
    if lora is not None:
        with lora.bypassed():
            yield
    elif tuner is not None and hasattr(tuner, "disable_adapter_layers"):
        tuner.disable_adapter_layers()
        try:
            yield
        finally:
            tuner.enable_adapter_layers()
    else:
        yield


class AdaLoraAllocator(Callback):
    """PEFT AdaLoRA: set its schedule from the run's step count, then allocate ranks
    after every optimiser step. Its running importance statistics travel in checkpoints."""

    STATISTICS = ("ipt", "exp_avg_ipt", "exp_avg_unc")

    def __init__(self) -> None:
        self._tuner = self._allocator = None
        self._restore: dict | None = None

    def state_dict(self) -> dict:
        if self._allocator is None:
            return {}
        state = {name: {k: v.detach().cpu().clone() for k, v in getattr(self._allocator, name).items()}
                 for name in self.STATISTICS}
        state["rank_pattern"] = self._config().rank_pattern  # the allocation so far (the final one after tfinal)
        return state

    def _config(self):
        return self._tuner.peft_config[self._tuner.trainable_adapter_name]

    def load_state_dict(self, state_dict: dict) -> None:
        self._restore = state_dict or None

    def on_train_start(self, trainer: pl.Trainer, pl_module) -> None:
        tuner = pl_module.network.peft_tuner
        if tuner is not None:
            set_adalora_steps(tuner, int(trainer.estimated_stepping_batches))
            self._tuner, self._allocator = tuner, getattr(tuner, "rankallocator", None)
        if self._restore is not None and self._allocator is not None:
            for name in self.STATISTICS:
                getattr(self._allocator, name).update(
                    {k: v.to(pl_module.device) for k, v in self._restore[name].items()})
            self._config().rank_pattern = self._restore.get("rank_pattern")
            self._restore = None

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        tuner = pl_module.network.peft_tuner
        if tuner is not None and hasattr(tuner, "update_and_allocate"):
            tuner.update_and_allocate(trainer.global_step)


def limited(batches: Iterable[HeadBatch], windows: int) -> Iterator[HeadBatch]:
    """Batches until ``windows`` windows have been yielded."""
    seen = 0
    for batch in batches:
        yield batch
        seen += len(batch[0])
        if seen >= windows:
            return


def selection_callback(settings: TrainSettings) -> GatedDSIC:
    """Gated DSIC with a fit's settings."""
    d = settings.dsic
    return GatedDSIC(
        budget=d.budget,
        warmup=d.warmup,
        final=d.final,
        interval=d.interval,
        draws=d.draws,
        ema=d.ema,
        importance_rule=d.rule,
        seed=0 if settings.random_state is None else settings.random_state,
    )


def recipe_callbacks(
    network: TraceNetwork,
    settings: TrainSettings,
    validation: bool,
    head_start: ClosedFormHeadStart | None = None,
    validation_requested: bool | None = None,
) -> list[Callback]:
    """The recipe's callbacks for ``network`` (the Darts model uses the same list):
    the closed-form head start, Gated DSIC or AdaLoRA's allocator, and, when there is
    validation data, the best state on validation kept (the head start included) and
    early stopping. Where validation was requested (``validation_requested``, default
    ``validation``) but the series were too short to hold any, the head start is kept.

    Continued training of a network whose Gated DSIC selection is already final
    (pretrain then fit, ``update_params=True``) keeps that selection.
    """
    callbacks: list[Callback] = [] if head_start is None else [head_start]
    lora = network.gated_lora
    if lora is not None and not lora.selection_frozen and settings.dsic is not None:
        callbacks.append(selection_callback(settings))
    elif network.spec.adapter == "adalora":
        callbacks.append(AdaLoraAllocator())
    if validation or validation_requested:
        callbacks.append(BestOnValidation())
    if validation and settings.early_stopping_patience > 0:
        callbacks.append(early_stopping(settings.early_stopping_patience))
    return callbacks
