"""The pretraining objective as a Lightning module, its learning-rate schedules, and the
held-out loss per source that compares backbone versions.

A checkpoint of :class:`PretrainModule` holds, besides what Lightning saves (weights,
optimiser, scheduler, step counters, callbacks such as the weight average), the data
stream's position (windows trained on) and the random states of Python, NumPy and torch,
so a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from trace_forecast.backbone import MomentBackbone, MomentConfig, t5_config_dict
from trace_forecast.losses import masked_reconstruction_loss
from trace_forecast.pretraining.mixture import SourceMixture
from trace_forecast.pretraining.windows import PretrainWindows

SCHEDULES = ("one-cycle", "time-budget", "constant")


class TimeBudgetSchedule:
    """Learning-rate factor for a run bounded by wall time rather than steps: linear
    warm-up over ``warmup_steps``, then a cosine decay to 0 over the elapsed share of
    ``budget_s`` (so the rate anneals whatever the hardware's speed; the run itself is
    stopped by Lightning's ``max_time``). Not resumable: a resumed run starts its clock anew."""

    def __init__(self, budget_s: float, warmup_steps: int = 200) -> None:
        self.budget_s = budget_s
        self.warmup_steps = warmup_steps
        self.start: float | None = None

    def __call__(self, step: int) -> float:
        if self.start is None:
            self.start = time.monotonic()
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        done = min(1.0, (time.monotonic() - self.start) / self.budget_s)
        return max(0.5 * (1 + math.cos(math.pi * done)), 1e-3)


class ConstantSchedule:
    """Linear warm-up over ``warmup_steps``, then a constant rate: a function of the step
    alone, so it resumes exactly and suits a campaign of unknown length (the exported
    weights are an exponential moving average, which plays the part of the final decay).

    ``cooldown=(start, steps)`` adds the last phase of a warm-up-stable-decay schedule
    (Hägele et al. 2024, "Scaling Laws and Compute-Optimal Training Beyond Fixed Training
    Durations"): from step ``start`` the rate falls as ``1 - sqrt(progress)`` to 0 over
    ``steps``. A cool-down branches off the constant-rate campaign at any step, so the
    campaign itself can go on and cool down again later."""

    def __init__(self, warmup_steps: int = 200, cooldown: tuple[int, int] | None = None) -> None:
        self.warmup_steps = warmup_steps
        self.cooldown = None if cooldown is None else (int(cooldown[0]), max(1, int(cooldown[1])))

    def __call__(self, step: int) -> float:
        factor = min(1.0, (step + 1) / max(self.warmup_steps, 1))
        if self.cooldown is not None and step >= self.cooldown[0]:
            progress = min(1.0, (step - self.cooldown[0]) / self.cooldown[1])
            factor *= max(1.0 - math.sqrt(progress), 0.0)
        return factor


class PretrainModule(pl.LightningModule):
    """Lightning wrapper of the pretraining objective (masked-patch reconstruction)."""

    def __init__(self, backbone: MomentBackbone, learning_rate: float = 1e-3, total_steps: int = 1000,
                 visible_weight: float = 0.0, time_budget_s: float | None = None,
                 schedule: str | None = None, warmup_steps: int = 200,
                 cooldown: tuple[int, int] | None = None, compile_objective: bool = False):
        super().__init__()
        self.backbone = backbone
        self.visible_weight = visible_weight
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.time_budget_s = time_budget_s
        self.schedule = schedule or ("time-budget" if time_budget_s else "one-cycle")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        self.warmup_steps = warmup_steps
        if cooldown is not None and self.schedule != "constant":
            raise ValueError("a cool-down follows the constant schedule only")
        self.cooldown = cooldown
        self.windows_seen = 0  # the data stream's position, saved in every checkpoint
        # torch.compile fuses the step's many small CPU kernels (benchmarks.pretraining_speed);
        # the weights, and so the checkpoints, are the module's own either way.
        self.objective = torch.compile(masked_reconstruction_loss, dynamic=False) if compile_objective \
            else masked_reconstruction_loss

    def training_step(self, batch, batch_idx):
        loss = self.objective(self.backbone, *batch, visible_weight=self.visible_weight)
        self.log("train_loss", loss, on_step=True, prog_bar=True)
        self.log("lr", self.trainer.optimizers[0].param_groups[0]["lr"], on_step=True)
        self.windows_seen += len(batch[0])
        return loss

    def validation_step(self, batch, batch_idx):
        loss = masked_reconstruction_loss(self.backbone, *batch)
        self.log("heldout_loss", loss, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=0.01)
        if self.schedule == "one-cycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.learning_rate, total_steps=self.total_steps,
                                                        pct_start=max(0.05, 3 / self.total_steps))
        else:
            factor = (TimeBudgetSchedule(self.time_budget_s, self.warmup_steps) if self.schedule == "time-budget"
                      else ConstantSchedule(self.warmup_steps, self.cooldown))
            sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def on_train_start(self) -> None:
        # LambdaLR restores its schedule's attributes from the checkpoint; the cool-down is
        # this run's choice (a branch starts from a checkpoint saved without one).
        for config in self.trainer.lr_scheduler_configs:
            for fn in getattr(config.scheduler, "lr_lambdas", []):
                if isinstance(fn, ConstantSchedule):
                    fn.cooldown = ConstantSchedule(self.warmup_steps, self.cooldown).cooldown

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["data_stream"] = {"windows_seen": self.windows_seen}
        kind, key, pos, has_gauss, gauss = np.random.get_state()
        # plain tensors and numbers, so the checkpoint loads with torch.load(weights_only=True)
        checkpoint["rng_states"] = {"python": random.getstate(), "torch": torch.get_rng_state(),
                                    "numpy": (kind, torch.from_numpy(key.astype(np.int64)), int(pos),
                                              int(has_gauss), float(gauss))}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.windows_seen = int(checkpoint.get("data_stream", {}).get("windows_seen", 0))
        states = checkpoint.get("rng_states")
        if states:
            random.setstate(states["python"])
            kind, key, pos, has_gauss, gauss = states["numpy"]
            np.random.set_state((kind, key.numpy().astype(np.uint32), pos, has_gauss, gauss))
            torch.set_rng_state(states["torch"])


def stream_position(checkpoint_path) -> int:
    """Windows a checkpoint of :class:`PretrainModule` had trained on (0 for older ones)."""
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    return int(checkpoint.get("data_stream", {}).get("windows_seen", 0))


def build_config(d_model: int, layers: int, d_ff: int, heads: int, seq_len: int = 512) -> MomentConfig:
    """A small MOMENT-layout architecture (vocab 2: T5's token table is never used)."""
    t5 = t5_config_dict(d_model, layers, d_ff, heads, d_kv=d_model // heads, vocab_size=2)
    t5["dropout_rate"] = 0.0
    return MomentConfig(d_model=d_model, t5_config=t5, seq_len=seq_len, dropout=0.0,
                        extra={"trace_forecast": {"pretrained_by": "trace_forecast.pretrain"}})


def heldout_loss_by_source(backbone: MomentBackbone, held: SourceMixture, windows: dict, seq_len: int,
                           n_windows: int = 256, seed: int = 12345, batch_size: int = 128) -> dict[str, float]:
    """Masked-reconstruction loss (hidden steps, RevIN space) on ``n_windows`` fixed windows of
    each source's held-out series, with the training mix of masks at full resolution; the same
    windows for any backbone, so versions compare."""
    out = {}
    backbone.eval()
    for name, series in held.groups.items():
        ds = PretrainWindows(series, n_windows, seq_len, backbone.patch_len, seed=seed, **windows)
        losses, counts = [], []
        with torch.no_grad():
            for x, m, mask in DataLoader(ds, batch_size=batch_size):
                losses.append(float(masked_reconstruction_loss(backbone, x, m, mask)) * len(x))
                counts.append(len(x))
        out[name] = round(sum(losses) / sum(counts), 4)
    return out


# The held-out forecasting check: every window hides only its last 1 to 12 patches (8 to 96
# steps), the zero-shot forecast's task, on the held-out slices of the pretraining sources.
FORECAST_CHECK_WINDOWS = dict(tail_share=1.0, max_tail_patches=12, mask_ratio=(0.15, 0.5))
# The same with short contexts only: 64 to 256 observed steps (8 to 32 patches, left-padded),
# what a forecast from a short series or a short ``context_length`` reads.
SHORT_FORECAST_CHECK_WINDOWS = dict(FORECAST_CHECK_WINDOWS, short_share=1.0, short_max=256)


def forecast_check(backbone: MomentBackbone, held: SourceMixture, seq_len: int,
                   n_windows: int = 1024, short: bool = False) -> dict[str, Any]:
    """:func:`heldout_loss_by_source` on :data:`FORECAST_CHECK_WINDOWS` (``short``:
    :data:`SHORT_FORECAST_CHECK_WINDOWS`), and its mean over the real sources (the synthetic
    group differs between a campaign and the benchmark)."""
    windows = SHORT_FORECAST_CHECK_WINDOWS if short else FORECAST_CHECK_WINDOWS
    by_source = heldout_loss_by_source(backbone, held, windows, seq_len, n_windows=n_windows)
    real = [loss for source, loss in by_source.items() if source != "synthetic"]
    return {"mean_over_real_sources": round(sum(real) / len(real), 4), "by_source": by_source}
