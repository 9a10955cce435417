"""Gated DSIC (Gated Dynamic Simulation Importance Calculation) as a Lightning callback.

Every ``interval`` optimiser steps after the warm-up, the callback estimates the
importance of every gated LoRA module on validation batches (training batches when the
run has no validation data) and re-selects the
modules to keep; the keep budget decays on a cubic schedule to its target, and at
the final step the selection is frozen and pruned modules stop training.

Importance (one evaluation): ``draws`` Monte-Carlo draws that share one validation
batch, each on its own share of the batch's items (of its windows, where a few items
hold several: :func:`assign_draws`), all in one batched pass
(per-draw copies of the gates separate their gradients). A draw switches on a
uniformly random subset of ``k`` modules, where ``k`` is the number the schedule will
keep at the *next* evaluation, and switches the rest off (pruned modules included, so
they can come back). With the drawn gates the loss ``L`` is computed and module ``i``
scores the loss increase if it were removed, ``-g_i dL/dg_i + g_i^2/2 d2L/dg_i^2``
(second-order Taylor; the Hessian diagonal by Hutchinson's estimator, its
Hessian-vector product a central difference of two gradients, so an evaluation is two
ordinary forward/backward passes) *only in draws where it is on*. The
average over those draws estimates the module's contribution in contexts that look
like the pruned model, which is the conditional consistency Gated DSIC asks for. An
exponential moving average smooths the estimate across evaluations. Under
data-parallel training the per-module sums and counts are all-reduced before any
selection, so every rank keeps the same modules.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pandas as pd
import pytorch_lightning as pl
import torch
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning.callbacks import Callback
from torch.utils.data import DataLoader

from trace_forecast.adapters import GatedLoraSet
from trace_forecast.parameters import DSIC_RULES as IMPORTANCE_RULES
from trace_forecast.rng import GLOBAL_RNG_LOCK
from trace_forecast.selection.schedule import KeepSchedule, resolve_count, resolve_step

logger = logging.getLogger(__name__)

# Gate step of the central difference that gives Hessian-vector products (gates start at 1).
FD_STEP = 1e-2


def top_k_mask(importance: torch.Tensor, k: int) -> torch.Tensor:
    """1 for the ``k`` largest scores (ties broken by position), 0 elsewhere."""
    order = torch.argsort(-importance, stable=True)
    mask = torch.zeros_like(importance)
    mask[order[:k]] = 1.0
    return mask


def batch_items(batch) -> int:
    """Number of items (first dimension) of a batch of tensors."""
    if isinstance(batch, torch.Tensor):
        return len(batch)
    tensors = batch.values() if isinstance(batch, dict) else (
        [getattr(batch, f.name) for f in dataclasses.fields(batch)] if dataclasses.is_dataclass(batch) else batch
    )
    return next(len(t) for t in tensors if isinstance(t, torch.Tensor))


def take_items(batch, index: torch.Tensor):
    """The items ``index`` of every tensor in a batch (tuples, lists, dicts, dataclasses)."""
    if isinstance(batch, torch.Tensor):
        return batch[index.to(batch.device)]
    if batch is None:
        return None
    if dataclasses.is_dataclass(batch):
        return dataclasses.replace(batch, **{f.name: take_items(getattr(batch, f.name), index)
                                             for f in dataclasses.fields(batch) if f.init})
    if isinstance(batch, dict):
        return {k: take_items(v, index) for k, v in batch.items()}
    if isinstance(batch, tuple | list):
        return type(batch)(take_items(t, index) for t in batch)
    return batch


HISTORY_COLUMNS = ["step", "module", "importance", "kept", "final"]


def history_frame(history: list[dict[str, Any]], names: list[str]) -> pd.DataFrame:
    """Selection rounds (:meth:`GatedDSIC.selection_history`) in long form: one row per
    (round, module) with ``step``, ``module``, ``importance``, ``kept`` and ``final``."""
    rows = [
        {"step": record["step"], "module": name, "importance": record["importance"][i],
         "kept": bool(record["mask"][i] > 0.5), "final": bool(record["final"])}
        for record in history
        for i, name in enumerate(names)
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def assign_draws(batch, draws: int, windows: int, device: torch.device) -> tuple[Any, torch.Tensor]:
    """The batch the draws share and the draw that owns each of its items or windows.

    With at least ``draws`` items, each draw owns ``items // draws`` whole items (the rest
    are left out). A batch of fewer items whose items hold several univariate windows (a
    Darts sample holds one per channel) is split by window instead: repeating a sample of
    ``C`` channels for every draw would run ``draws * C`` windows (17 GB for 321 channels).
    Items are repeated only when there are fewer windows than draws.
    """
    items = batch_items(batch)
    per_item = max(1, windows // max(items, 1))
    if items >= draws or per_item == 1:
        per_draw = max(1, items // draws)
        index = torch.arange(draws * per_draw, device=device)
        return take_items(batch, index % items), index // per_draw  # short batches repeat items
    copies = -(-draws // windows)  # ceil: repeat the items only if there are fewer windows than draws
    if copies > 1:
        batch = take_items(batch, torch.arange(items * copies, device=device) % items)
    total = items * copies * per_item
    # Contiguous, near-equal runs of windows (window w of item i is row i * per_item + w).
    return batch, torch.arange(total, device=device) * draws // total


def random_subset_masks(n: int, k: int, draws: int, generator: torch.Generator) -> torch.Tensor:
    """``[draws, n]`` masks, each with ``k`` ones at uniformly random positions."""
    scores = torch.rand(draws, n, generator=generator)
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks < k).float()


class GatedDSIC(Callback):
    """Select gated LoRA modules by Monte-Carlo masked gate importance.

    Parameters
    ----------
    budget : float or int, default=0.5
        Modules kept at the end: a fraction of all gated modules (float <= 1) or a count.
    warmup : float or int, default=0.2
        Steps during which every module trains before the first selection
        (fraction of the total optimiser steps, or a step count).
    final : float or int, default=0.7
        Step at which the budget reaches its target and the selection freezes.
    interval : int, default=10
        Optimiser steps between two importance evaluations.
    draws : int, default=8
        Monte-Carlo draws (random gate masks) per evaluation.
    ema : float, default=0.85
        Smoothing factor of the importance across evaluations.
    seed : int, default=0
        Seed of the draw generator (offset by the rank under data parallelism).
    importance_rule : {"taylor2", "magnitude"}, default="taylor2"
        ``"taylor2"``: expected loss increase if the module were removed, to second
        order, ``-g dL/dg + g^2/2 d2L/dg2`` (Hessian diagonal by Hutchinson's estimator,
        Hessian-vector products by a central difference of gradients).
        ``"magnitude"``: ``|g dL/dg|`` (first order, as AdaLoRA's sensitivity). The
        magnitude rule also rewards *harmful* modules (a large gradient that pushes the
        gate to 0); see ``docs/design.md`` for the test that shows it.
        ``"random"``: a control for ablations: one uniformly random ranking drawn at the
        first evaluation (from ``seed``) and kept, so the schedule prunes to a random
        subset of the same size; nothing is measured.
    """

    def __init__(
        self,
        budget: float | int = 0.5,
        warmup: float | int = 0.2,
        final: float | int = 0.7,
        interval: int = 10,
        draws: int = 8,
        ema: float = 0.85,
        seed: int = 0,
        importance_rule: str = "taylor2",
    ) -> None:
        if importance_rule not in IMPORTANCE_RULES:
            raise ValueError(f"importance_rule must be one of {IMPORTANCE_RULES}, got {importance_rule!r}")
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}")
        if draws < 1:
            raise ValueError(f"draws must be >= 1, got {draws}")
        if not 0 <= ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {ema}")
        self.budget = budget
        self.warmup = warmup
        self.final = final
        self.interval = interval
        self.draws = draws
        self.ema = ema
        self.seed = seed
        self.importance_rule = importance_rule
        self.importance: torch.Tensor | None = None
        self.seen: torch.Tensor | None = None
        self.frozen = False
        self.history: list[dict[str, Any]] = []
        self.schedule: KeepSchedule | None = None
        self._lora: GatedLoraSet | None = None
        self._val_iter = None
        self._val_position = 0  # batches drawn from the current pass over the validation data
        self._generator: torch.Generator | None = None

    # ----------------------------------------------------------------- set-up
    def _set_up(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._lora = GatedLoraSet.find(pl_module)
        if self._lora is None:
            raise RuntimeError("GatedDSIC needs a model with gated LoRA modules (adapter='gated_dsic')")
        n = len(self._lora)
        total = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else None
        if total is None:
            total = int(trainer.estimated_stepping_batches)
        warmup = resolve_step(self.warmup, total)
        final = max(resolve_step(self.final, total), warmup + 1)
        self.schedule = KeepSchedule(n, resolve_count(self.budget, n), warmup, final)
        if self.importance is None:
            self.importance = torch.zeros(n)
            self.seen = torch.zeros(n, dtype=torch.bool)
        self._generator = torch.Generator().manual_seed(self.seed + 7919 * trainer.global_rank)
        saved = getattr(self, "_saved_generator", None)
        if saved is not None:  # resumed: continue the same stream of draws
            self._generator.set_state(saved)
            self._saved_generator = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._set_up(trainer, pl_module)
        if self.frozen:  # resumed after the final step
            self._lora.freeze_pruned()

    # ----------------------------------------------------------------- schedule
    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        sched = self.schedule
        if self.frozen or step <= sched.warmup_step:
            return
        if step >= sched.final_step:
            self._finalize(trainer, pl_module)
        elif (step - sched.warmup_step) % self.interval == 0:
            self._evaluate(trainer, pl_module, step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Training stopped early (early stopping, few steps): select at the target anyway.
        if not self.frozen and self.schedule is not None:
            self._finalize(trainer, pl_module)

    def _evaluate(self, trainer, pl_module, step: int) -> None:
        self._measure(trainer, pl_module, self.schedule.keep(step + self.interval))
        self._select(self.schedule.keep(step), step)

    def _finalize(self, trainer, pl_module) -> None:
        step = trainer.global_step
        self._measure(trainer, pl_module, self.schedule.target)
        self._select(self.schedule.target, step, final=True)
        self._lora.freeze_pruned()
        self.frozen = True

    def _select(self, keep: int, step: int, final: bool = False) -> None:
        mask = top_k_mask(self.importance, keep)
        self._lora.set_masks(mask)
        kept = int(mask.sum().item())
        self.history.append({
            "step": int(step), "kept": kept, "mask": mask.tolist(),
            "importance": self.importance.tolist(), "final": final,
        })
        logger.info(
            "Gated DSIC step %d: kept %d of %d modules (target %d)%s",
            step, kept, len(mask), self.schedule.target, ", selection frozen" if final else "",
        )

    def selection_history(self) -> list[dict[str, Any]]:
        """One record per selection round: ``step``, ``kept`` (count), ``mask`` and
        ``importance`` (one value per module, in :attr:`module_names` order), ``final``."""
        return [dict(record) for record in self.history]

    @property
    def module_names(self) -> list[str]:
        """Names of the gated modules, in the order of the history's masks."""
        return [] if self._lora is None else list(self._lora.names)

    # ----------------------------------------------------------------- importance
    def _measure(self, trainer, pl_module, k_on: int) -> None:
        """Update the importance with ``k_on`` modules on per draw (the rule's way)."""
        if self.importance_rule == "random":
            if not bool(self.seen.all()):  # one random ranking, the same on every rank
                ranking = torch.rand(len(self._lora), generator=torch.Generator().manual_seed(self.seed))
                self.importance.copy_(ranking)
                self.seen[:] = True
            return
        self.update_importance(self.estimate(trainer, pl_module, k_on))

    def update_importance(self, estimate: tuple[torch.Tensor, torch.Tensor]) -> None:
        """Blend a new (sums, counts) estimate into the smoothed importance."""
        sums, counts = estimate
        measured = counts > 0
        new = torch.where(measured, sums / counts.clamp_min(1), torch.zeros_like(sums))
        first = measured & ~self.seen
        again = measured & self.seen
        self.importance[first] = new[first]
        self.importance[again] = self.ema * self.importance[again] + (1 - self.ema) * new[again]
        self.seen |= measured

    def _next_batch(self, trainer: pl.Trainer):
        loaders = trainer.val_dataloaders
        if loaders is None:  # the validation loop has not run yet
            try:
                trainer.fit_loop.epoch_loop.val_loop.setup_data()
                loaders = trainer.val_dataloaders
            except MisconfigurationException:  # no validation data: fall back to training batches
                loaders = None
        fallback = not loaders
        if fallback:
            loaders = trainer.train_dataloader
        loader = loaders[0] if isinstance(loaders, list | tuple) else loaders
        if fallback:  # the training windows in order: the training shuffle's generator is left alone
            loader = DataLoader(loader.dataset, batch_size=loader.batch_size, collate_fn=loader.collate_fn,
                                generator=torch.Generator())
        if self._val_iter is None:
            if self._val_position:  # resumed: the interrupted fit drew this pass's seed before its checkpoint
                with torch.random.fork_rng(devices=[]):
                    self._val_iter = iter(loader)
            else:
                self._val_iter = iter(loader)
            for _ in range(self._val_position):  # where the interrupted fit stood
                next(self._val_iter)
        try:
            batch = next(self._val_iter)
        except StopIteration:
            self._val_iter, self._val_position = iter(loader), 0
            batch = next(self._val_iter)
        self._val_position += 1
        return batch

    def estimate(self, trainer: pl.Trainer, pl_module: pl.LightningModule, k_on: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-module importance sums and counts over ``draws`` random gate masks.

        All draws share one validation batch, split into ``draws`` equal groups of items;
        each group runs with its own gate mask, and per-draw copies of the gates give
        every draw its own gradient in one forward and one backward pass (two of each for
        the second-order rule), instead of ``draws`` passes over whole batches.
        """
        lora = self._lora
        masks = random_subset_masks(len(lora), k_on, self.draws, self._generator)
        was_training = pl_module.training
        pl_module.eval()
        try:
            scores = self._draw_scores(trainer, pl_module, lora, masks, self._next_batch(trainer))
        finally:
            pl_module.train(was_training)
        live = torch.tensor([float(g.requires_grad) for g in lora.gates])
        on = masks * live
        sums, counts = (scores * on).sum(0), on.sum(0)
        device = pl_module.device
        sums = trainer.strategy.reduce(sums.to(device), reduce_op="sum").cpu()
        counts = trainer.strategy.reduce(counts.to(device), reduce_op="sum").cpu()
        return sums, counts

    def _draw_scores(self, trainer, pl_module, lora: GatedLoraSet, masks: torch.Tensor, batch) -> torch.Tensor:
        """Scores ``[draws, n_modules]``: draw ``d`` scores every module on its own items."""
        batch = trainer.strategy.batch_to_device(batch)
        draws, n = masks.shape
        device = lora.gates[0].device
        windows = getattr(pl_module, "windows_in", batch_items)(batch)  # univariate windows in the batch
        batch, owner = assign_draws(batch, draws, windows, device)
        # Each draw's share of the batch: the loss is a mean over windows, so the gradient of
        # ``loss * windows / share`` for a draw's gates is the mean over that draw's windows.
        share = torch.bincount(owner, minlength=draws).float()
        gates = torch.stack([p.detach().float() for p in lora.gates]).to(device)  # [n]
        z = masks.to(device)
        loss_seed = int(torch.randint(0, 2**31 - 1, (1,), generator=self._generator))

        def draw_gradients(offset: torch.Tensor) -> torch.Tensor:
            """Every draw's ``dL_d/dg`` at gates ``g + offset`` (``offset [draws, n]``)."""
            draw_gates = (gates + offset).requires_grad_(True)  # one copy of the gates per draw
            item_gates = (z * draw_gates)[owner].T  # [n, items or windows]
            # The same random state in every pass (the reconstruction loss draws patch masks).
            with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]), lora.draw(item_gates), torch.enable_grad(), \
                    trainer.precision_plugin.forward_context():
                torch.manual_seed(loss_seed)
                loss = pl_module.compute_loss(batch).float()
                (grad,) = torch.autograd.grad(loss, draw_gates)
            return grad.detach() * (len(owner) / share)[:, None]

        if self.importance_rule == "magnitude":
            return (gates * draw_gradients(torch.zeros(draws, n, device=device))).abs().cpu()
        # Hutchinson with a central difference of gradients: v * (H v) estimates the Hessian
        # diagonal. Two ordinary forward/backward passes at g +- eps v; their mean is the
        # gradient at g (to O(eps^2)). No double backward, so memory stays a training step's.
        v = (torch.randint(0, 2, (draws, n), generator=self._generator) * 2 - 1).float().to(device)
        plus, minus = draw_gradients(FD_STEP * v), draw_gradients(-FD_STEP * v)
        grad = (plus + minus) / 2
        hv = (plus - minus) / (2 * FD_STEP)
        # Loss increase if the module were removed (g -> 0), to second order.
        values = -gates * grad + 0.5 * gates**2 * (v * hv)
        return values.float().cpu()

    # ----------------------------------------------------------------- reporting / state
    def report(self) -> list[dict[str, Any]]:
        """One row per gated module: name, kept, smoothed importance, gate value."""
        if self._lora is None or self.importance is None:
            return []
        masks = self._lora.masks()
        gates = self._lora.gate_values()
        return [
            {"module": name, "kept": bool(masks[i] > 0.5), "importance": float(self.importance[i]), "gate": float(gates[i])}
            for i, name in enumerate(self._lora.names)
        ]

    def state_dict(self) -> dict[str, Any]:
        return {
            "importance": None if self.importance is None else self.importance.clone(),
            "seen": None if self.seen is None else self.seen.clone(),
            "frozen": self.frozen,
            "history": list(self.history),
            "generator": None if self._generator is None else self._generator.get_state(),
            "val_position": self._val_position,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.importance = state_dict["importance"]
        self.seen = state_dict["seen"]
        self.frozen = state_dict["frozen"]
        self.history = list(state_dict["history"])
        self._saved_generator = state_dict.get("generator")
        self._val_position = int(state_dict.get("val_position", 0))

    def on_fit_start(self, trainer, pl_module) -> None:
        self._val_iter = None  # the position survives: a resumed fit continues from it

    def __getstate__(self) -> dict[str, Any]:  # the iterator and module handle are not picklable state
        state = self.__dict__.copy()
        state["_val_iter"] = None
        state["_lora"] = None
        return state
