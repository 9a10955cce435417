"""``fit_network``: train a :class:`TraceNetwork` with PyTorch Lightning.

One engine for every adapter mode and task. CPU or CUDA (``device="auto"`` picks
CUDA when present, with bf16 autocast); several GPUs through Lightning's own
strategies (``devices``, ``strategy``); early stopping on validation loss; seeds
for reproducibility.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
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
    EARLY_STOPPING_PATIENCE,
    GRADIENT_CLIP,
    WEIGHT_DECAY,
    AdaLoraAllocator,
    BestOnValidation,
    ClosedFormHeadStart,
    early_stopping,
)
from trace_forecast.engine.snapshot import restore_snapshot, training_snapshot
from trace_forecast.engine.threads import limit_worker_threads
from trace_forecast.errors import MemoryRetryWarning, ResourceError
from trace_forecast.network import TraceNetwork
from trace_forecast.parameter_count import parameter_report
from trace_forecast.parameters import default
from trace_forecast.selection import GatedDSIC


@dataclass
class DSICSettings:
    """Gated DSIC settings (see :class:`trace_forecast.selection.GatedDSIC`)."""

    budget: float | int = default("dsic_budget")
    warmup: float | int = default("dsic_warmup")
    final: float | int = default("dsic_final")
    interval: int = default("dsic_interval")
    draws: int = default("dsic_draws")
    rule: str = default("dsic_rule")
    ema: float = 0.85

    @classmethod
    def from_params(cls, params) -> DSICSettings:
        """From an estimator's ``dsic_budget``, ``dsic_warmup``, ``dsic_final``,
        ``dsic_interval``, ``dsic_draws`` and ``dsic_rule`` parameters (a mapping)."""
        names = ("budget", "warmup", "final", "interval", "draws", "rule")
        return cls(**{name: params[f"dsic_{name}"] for name in names})


@dataclass
class TrainSettings:
    """How to train; defaults are the user-facing ones (:mod:`trace_forecast.parameters`)
    and the recipe's (:mod:`trace_forecast.engine.recipe`)."""

    max_epochs: int = default("max_epochs")
    max_steps: int = -1
    batch_size: int = default("batch_size")
    learning_rate: float = default("learning_rate")
    weight_decay: float = WEIGHT_DECAY
    gradient_clip: float = GRADIENT_CLIP
    early_stopping_patience: int = EARLY_STOPPING_PATIENCE
    reconstruction_weight: float = default("reconstruction_weight")
    mask_ratio: float = default("mask_ratio")
    visible_weight: float = 1.0
    mask_scheme: tuple[str, int] | None = None
    device: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str | None = None
    random_state: int | None = 0
    verbose: bool = False
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)  # accelerator, devices, strategy, precision, num_nodes
    dsic: DSICSettings | None = field(default_factory=DSICSettings)  # None: gated LoRA without selection

    def accelerator(self) -> tuple[str, str]:
        """``(accelerator, default precision)`` where this training runs (``trainer_kwargs`` win)."""
        return resolve_accelerator(self.trainer_kwargs.get("accelerator", self.device))


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


def resolve_accelerator(device: str) -> tuple[str, str]:
    """``(accelerator, default precision)`` for ``"auto"``, ``"cpu"``, ``"cuda"``/``"gpu"``."""
    device = device.lower()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device in ("cuda", "gpu"):
        if not torch.cuda.is_available():
            raise ValueError("device='cuda' was requested but no CUDA GPU is available")
        return "gpu", "bf16-mixed" if torch.cuda.is_bf16_supported() else "16-mixed"
    if device == "cpu":
        return "cpu", "32-true"
    raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {device!r}")


def selection_callback(settings: TrainSettings) -> GatedDSIC:
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
    train_loader = DataLoader(
        train_data, batch_size=settings.batch_size, shuffle=True, generator=generator, drop_last=False
    )
    val_loader = (
        DataLoader(val_data, batch_size=settings.batch_size, shuffle=False) if val_data is not None and len(val_data) else None
    )
    module = TraceLightningModule(
        network,
        learning_rate=settings.learning_rate,
        weight_decay=settings.weight_decay,
        reconstruction_weight=settings.reconstruction_weight,
        mask_ratio=settings.mask_ratio,
        visible_weight=settings.visible_weight,
        mask_scheme=settings.mask_scheme,
    )
    history = LossHistory()
    callbacks: list[Callback] = [
        history, *recipe_callbacks(network, settings, val_loader is not None, head_start), *extra_callbacks
    ]
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
            enable_checkpointing=False,
            enable_progress_bar=settings.verbose,
            enable_model_summary=settings.verbose,
            num_sanity_val_steps=0,
            deterministic=False,
        )
        start = time.perf_counter()
        with interruptible():
            trainer.fit(module, train_dataloaders=train_loader, val_dataloaders=val_loader)
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
