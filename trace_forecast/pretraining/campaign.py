"""A pretraining campaign: one run continued over many legs, on whatever machine is at hand.

The machine may be replaced between legs, so the campaign lives in a folder that is
committed with the code (``docs/pretraining/v4/``): ``checkpoint.ckpt`` holds everything
a leg needs to continue (weights and their moving average, optimiser, scheduler, step
counters, the data stream's position and the random states; see
:class:`~trace_forecast.pretraining.module.PretrainModule`), and ``legs.json`` records each
leg (hardware, wall time, steps, windows, held-out loss). Each checkpoint replaces the one
before it; it is written to a temporary file and renamed, so a leg killed while writing
leaves the previous checkpoint whole. A leg's row is rewritten at every checkpoint, so even
a killed leg is on record up to its last checkpoint.
"""

from __future__ import annotations

import json
import os
import platform
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback

from trace_forecast.engine.resume import atomic_save

CHECKPOINT = "checkpoint.ckpt"
LEGS = "legs.json"


def hardware(trainer: pl.Trainer) -> dict[str, Any]:
    """Where a leg runs: CPU model and instruction set, threads, GPU, precision."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu_model": cpu, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "torch_threads": torch.get_num_threads(), "gpu": gpu,
            "accelerator": type(trainer.accelerator).__name__, "precision": str(trainer.precision)}


class PeriodicCheckpoint(Callback):
    """Save the run every ``every_n_steps`` optimiser steps and when it ends, atomically, to
    ``path``; with a ``campaign`` folder, also keep the leg's row of ``legs.json`` current.
    ``max_minutes`` ends this run (this leg) after that much wall time: unlike Lightning's
    ``max_time``, whose clock is saved in the checkpoint and would stop a resumed leg at once,
    it counts from the leg's own start."""

    def __init__(self, path: Path, every_n_steps: int, campaign: Path | None = None,
                 leg_info: dict[str, Any] | None = None, max_minutes: float | None = None) -> None:
        self.path = Path(path)
        self.every_n_steps = max(1, int(every_n_steps))
        self.campaign = None if campaign is None else Path(campaign)
        self.leg_info = leg_info or {}
        self.max_seconds = None if max_minutes is None else 60.0 * max_minutes
        self.row: dict[str, Any] | None = None
        self._start = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module) -> None:
        self._start = time.perf_counter()
        if self.campaign is None:
            return
        legs = read_legs(self.campaign)
        for row in legs:  # a leg still "running" when the next one starts was killed
            if row.get("status") == "running":
                update_leg(self.campaign, {**row, "status": "interrupted"})
        self.row = {"leg": len(legs) + 1, "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "status": "running", "hardware": hardware(trainer),
                    "steps_start": int(trainer.global_step), "windows_start": int(pl_module.windows_seen),
                    **self.leg_info}
        self._write_row(trainer, pl_module)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step % self.every_n_steps == 0:
            self.save(trainer, pl_module)
        if self.max_seconds is not None and time.perf_counter() - self._start >= self.max_seconds:
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module) -> None:
        self.save(trainer, pl_module, status="finished")

    def save(self, trainer: pl.Trainer, pl_module, status: str = "running") -> None:
        atomic_save(trainer, self.path)
        self.record(trainer, pl_module, status)

    def record(self, trainer: pl.Trainer, pl_module, status: str, **extra: Any) -> None:
        """Rewrite the leg's row (campaign runs only) with its status and ``extra`` fields."""
        if self.row is not None:
            self.row.update(status=status, **extra)
            self._write_row(trainer, pl_module)

    def _write_row(self, trainer: pl.Trainer, pl_module) -> None:
        metrics = {k: round(float(v), 4) for k, v in trainer.callback_metrics.items()}
        self.row.update({"steps_end": int(trainer.global_step), "windows_end": int(pl_module.windows_seen),
                         "wall_seconds": round(time.perf_counter() - self._start, 1),
                         "heldout_loss": metrics.get("heldout_loss")})
        update_leg(self.campaign, self.row)


def read_legs(campaign: Path) -> list[dict[str, Any]]:
    path = Path(campaign) / LEGS
    return json.loads(path.read_text()) if path.is_file() else []


def update_leg(campaign: Path, row: dict[str, Any]) -> None:
    """Insert or replace row ``row["leg"]`` of ``legs.json`` (written atomically)."""
    legs = [r for r in read_legs(campaign) if r.get("leg") != row["leg"]] + [dict(row)]
    legs.sort(key=lambda r: r["leg"])
    path = Path(campaign) / LEGS
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(legs, indent=1) + "\n")
    os.replace(tmp, path)


def campaign_backbone(checkpoint: str | Path, architecture: str | Path | None = None):
    """A campaign checkpoint's exported weights (the moving average, which Lightning's weight
    averaging keeps as the checkpoint's ``state_dict``; the raw weights are its
    ``current_model_state``) in a backbone, in eval mode. ``architecture`` is a backbone folder
    of the same shape (default: the embedded backbone, which every v4 leg continues)."""
    from trace_forecast.backbone import load_backbone

    # weights_only: the restricted unpickler (tensors and plain types only)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    backbone = load_backbone(architecture)
    backbone.load_state_dict({k.removeprefix("backbone."): v for k, v in state.items()})
    return backbone.eval()


def export_weights(checkpoint: str | Path, out: str | Path, architecture: str | Path | None = None) -> Path:
    """Write :func:`campaign_backbone` as a backbone folder that ``backbone=`` loads."""
    from trace_forecast.backbone import save_backbone

    return save_backbone(campaign_backbone(checkpoint, architecture), out, moment_compatible=False)
