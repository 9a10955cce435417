"""``fit_network``: train a :class:`TraceNetwork` with PyTorch Lightning.

One engine for every adapter mode and task. CPU or CUDA (``device="auto"`` picks
CUDA when present, with bf16 autocast; :mod:`~trace_forecast.engine.devices`); several
GPUs through Lightning's own strategies (``devices``, ``strategy``); the recipe's callbacks
(:func:`~trace_forecast.engine.recipe.recipe_callbacks`); seeds for reproducibility; one
retry at half the batch when the GPU runs out of memory. The settings are
:mod:`~trace_forecast.engine.settings`'s.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader, Dataset

from trace_forecast.engine.callbacks import LossHistory
from trace_forecast.engine.interrupt import interruptible
from trace_forecast.engine.module import TraceLightningModule
from trace_forecast.engine.quiet import console
from trace_forecast.engine.recipe import (
    BestOnValidation,
    ClosedFormHeadStart,
    recipe_callbacks,
)
from trace_forecast.engine.resume import (
    CheckpointPlan,
    DataPosition,
    RandomState,
    ResumableLoader,
    fit_key,
)
from trace_forecast.engine.settings import TrainSettings
from trace_forecast.engine.snapshot import restore_snapshot, training_snapshot
from trace_forecast.engine.threads import limit_worker_threads
from trace_forecast.errors import MemoryRetryWarning, ResourceError
from trace_forecast.network import TraceNetwork
from trace_forecast.parameter_count import parameter_report
from trace_forecast.selection import GatedDSIC


@dataclass
class FitResult:
    """What training produced, for fitted attributes and reports."""

    network: TraceNetwork
    train_loss: list[float]
    val_loss: list[float]
    selection: list[dict[str, Any]]
    parameters: dict[str, int]
    fit_seconds: float
    steps: int
    selection_history: list[dict[str, Any]] = field(default_factory=list)
    module_names: list[str] = field(default_factory=list)
    kept: str | None = None  # the state kept by validation loss: "start" (the head start) or "epoch N"
    head_start: Any = None  # what the closed-form start chose (heads.ridge.HeadStart)


def fit_network(
    network: TraceNetwork,
    train_data: Dataset,
    val_data: Dataset | None,
    settings: TrainSettings,
    extra_callbacks: Sequence[Callback] = (),
    head_start: ClosedFormHeadStart | None = None,
) -> FitResult:
    """Train ``network`` in place and report what happened (``head_start``: solve the
    head in closed form when training starts).

    When the GPU runs out of memory, the network is restored to its state before the fit
    and trained once more with half the batch (with a warning); a second failure raises
    :class:`~trace_forecast.errors.ResourceError`.
    """
    snapshot = training_snapshot(network)
    try:
        return _fit_once(network, train_data, val_data, settings, extra_callbacks, head_start)
    except torch.OutOfMemoryError as error:
        if settings.batch_size < 2:
            raise ResourceError(f"out of GPU memory at batch_size=1: {OOM_REMEDY}") from error
        first = settings.batch_size
    restore_snapshot(network, snapshot)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    smaller = dataclasses.replace(settings, batch_size=first // 2)
    warnings.warn(f"out of GPU memory at batch_size={first}; retrying once with batch_size={first // 2}",
                  MemoryRetryWarning, stacklevel=2)
    try:
        return _fit_once(network, train_data, val_data, smaller, extra_callbacks, head_start)
    except torch.OutOfMemoryError as error:
        raise ResourceError(
            f"out of GPU memory at batch_size={first} and again at {first // 2}: {OOM_REMEDY}"
        ) from error


OOM_REMEDY = ("lower batch_size or context_length, use a smaller backbone, precision='bf16-mixed' "
              "(trainer_kwargs), or device='cpu'")


def single_device_steps(batches: int, settings: TrainSettings, accelerator: str) -> int | None:
    """Optimiser steps of a fit on one device (what Lightning would estimate); ``None``
    where Lightning may split the data (a distributed strategy, several devices or nodes)
    and its own estimate is needed."""
    kwargs = settings.trainer_kwargs
    strategy = kwargs.get("strategy", settings.strategy)
    devices = kwargs.get("devices", settings.devices if accelerator == "gpu" else 1)
    if strategy not in ("auto", None, "single_device") or devices not in (1, "1", [0]) \
            or kwargs.get("num_nodes", 1) != 1:
        return None
    total = batches * settings.max_epochs
    return total if settings.max_steps < 0 else min(total, settings.max_steps)


def _fit_once(
    network: TraceNetwork,
    train_data: Dataset,
    val_data: Dataset | None,
    settings: TrainSettings,
    extra_callbacks: Sequence[Callback],
    head_start: ClosedFormHeadStart | None,
) -> FitResult:
    limit_worker_threads()  # a pool worker gets its share of the cores, not all of them
    seed = settings.random_state
    if seed is not None:
        pl.seed_everything(seed, workers=True, verbose=False)
    accelerator, default_precision = settings.accelerator()
    generator = torch.Generator().manual_seed(0 if seed is None else seed)
    steps = single_device_steps(-(-len(train_data) // settings.batch_size), settings, accelerator)
    if steps is not None:  # shuffles as DataLoader(shuffle=True) does, and resumes mid-epoch
        train_loader = ResumableLoader(train_data, settings.batch_size, generator)
    else:  # several devices: Lightning gives the loader a distributed sampler
        train_loader = DataLoader(train_data, batch_size=settings.batch_size, shuffle=True, generator=generator)
    val_loader = (
        DataLoader(val_data, batch_size=settings.batch_size, shuffle=False) if val_data is not None and len(val_data)
        else None
    )
    module = TraceLightningModule(
        network,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        reconstruction_weight=settings.reconstruction_weight,
        mask_ratio=settings.mask_ratio,
        visible_weight=settings.visible_weight,
        mask_scheme=settings.mask_scheme,
        total_steps=steps,
    )
    history = LossHistory()
    plan = None
    if settings.checkpoint_dir is not None:  # the key hashes the starting state: before any training
        plan = CheckpointPlan(Path(settings.checkpoint_dir), settings.checkpoint_every,
                              fit_key(network, (train_data, val_data), settings))
    callbacks: list[Callback] = [
        history, *recipe_callbacks(network, settings, val_loader is not None, head_start), *extra_callbacks,
    ]
    if isinstance(train_loader, ResumableLoader):
        callbacks.append(DataPosition(train_loader))
    if plan is not None:
        callbacks += [RandomState(), plan.callback()]
        module.fit_key = plan.key
    placement = {
        "accelerator": accelerator,
        "devices": settings.devices if accelerator == "gpu" else 1,
        "strategy": settings.strategy,
        "precision": settings.precision or default_precision,
        **settings.trainer_kwargs,
    }
    if placement["strategy"] == "ddp" and network.gated_lora is not None:
        # Gated DSIC stops training pruned modules; DDP must not wait for their gradients.
        placement["strategy"] = "ddp_find_unused_parameters_true"
    with console(settings.verbose):  # Lightning prints its banner at construction
        trainer = pl.Trainer(
            max_epochs=settings.max_epochs,
            max_steps=settings.max_steps,
            **placement,
            gradient_clip_val=settings.gradient_clip or None,
            callbacks=callbacks,
            logger=False,
            enable_checkpointing=plan is not None,  # then ResumeCheckpoint is the one (engine.resume)
            enable_progress_bar=settings.verbose,
            enable_model_summary=settings.verbose,
            num_sanity_val_steps=0,
            deterministic=False,
        )
        start = time.perf_counter()
        with interruptible():
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader,
                        ckpt_path=None if plan is None else plan.resume_from(), weights_only=True)
    elapsed = time.perf_counter() - start
    network.eval().cpu()
    dsic = next((c for c in callbacks if isinstance(c, GatedDSIC)), None)
    best = next((c for c in callbacks if isinstance(c, BestOnValidation)), None)
    return FitResult(
        network=network,
        train_loss=history.train,
        val_loss=history.val,
        selection=dsic.report() if dsic else [],
        parameters=parameter_report(network),
        fit_seconds=elapsed,
        steps=int(trainer.global_step),
        selection_history=dsic.selection_history() if dsic else [],
        module_names=dsic.module_names if dsic else [],
        kept=best.kept if best else None,
        head_start=head_start.choice if head_start else None,
    )
