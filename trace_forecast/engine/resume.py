"""Fine-tunes that survive interruption: Lightning checkpoints that resume bit for bit.

Lightning already saves and restores the weights, the optimiser, the scheduler, its loop
counters and every callback's ``state_dict`` (Gated DSIC's importance and generator, the
kept-best state, early stopping). What it cannot know is kept here:

- where the shuffled data stream stood: :class:`ResumableLoader`'s sampler
  (:class:`ResumableRandomSampler`) draws exactly as torch's ``RandomSampler`` and restarts
  mid-epoch at the first window not yet trained on; :class:`DataPosition` carries its
  position in the checkpoint;
- the global random state (dropout, reconstruction masks): :class:`RandomState`;
- which fit a checkpoint belongs to: :func:`fit_key`, a hash of the data, the network's
  starting state and the settings, stored in the checkpoint and compared before resuming;
- atomic files: :func:`atomic_save` writes to a temporary name and renames, so a kill
  during a save leaves the previous checkpoint whole (the pretraining campaign saves the
  same way).

Checkpoints hold the trainable tensors and buffers only (not the frozen backbone), so one
costs kilobytes to megabytes, even for MOMENT-1-large.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, Checkpoint
from torch.utils.data import DataLoader, Dataset, Sampler

CHECKPOINT_NAME = "resume"  # the file is resume.ckpt
KEY_FIELD = "trace_forecast_fit_key"


class ResumableRandomSampler(Sampler[int]):
    """torch's ``RandomSampler`` (without replacement, with a generator), draw for draw,
    plus a position: ``consumed`` windows of the current epoch have been trained on."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size = size
        self.generator = generator
        self.order: list[int] = []
        self.consumed = 0
        self.finished_draws = False  # the epoch's last draw (RandomSampler's remainder) is done
        self._resume: dict[str, Any] | None = None

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        if self._resume is not None:  # the rest of an interrupted epoch, then its last draw
            state, self._resume = self._resume, None
            self.order, self.consumed, self.finished_draws = list(state["order"]), int(state["consumed"]), False
            yield from self.order[self.consumed:]
            if not state["finished_draws"]:
                torch.randperm(self.size, generator=self.generator)
            self.finished_draws = True
            return
        self.consumed, self.finished_draws = 0, False
        self.order = torch.randperm(self.size, generator=self.generator).tolist()
        yield from self.order
        torch.randperm(self.size, generator=self.generator)  # RandomSampler's (empty) remainder
        self.finished_draws = True

    def state(self) -> dict[str, Any]:
        epoch_done = self.consumed >= self.size and self.finished_draws
        return {"order": torch.tensor([] if epoch_done else self.order, dtype=torch.int64),
                "consumed": 0 if epoch_done else self.consumed,
                "finished_draws": self.finished_draws, "generator": self.generator.get_state(),
                "epoch_done": epoch_done}


class ResumableLoader(DataLoader):
    """A shuffling ``DataLoader`` whose position Lightning saves in its checkpoints."""

    def __init__(self, dataset: Dataset, batch_size: int, generator: torch.Generator) -> None:
        super().__init__(dataset, batch_size=batch_size,
                         sampler=ResumableRandomSampler(len(dataset), generator), generator=generator)
        self._restored: tuple[torch.Tensor, bool] | None = None  # (generator state, set before the epoch's draws)

    def __iter__(self):
        restored, self._restored = self._restored, None
        if restored is not None and restored[1]:  # an epoch had just ended: the next one draws as usual
            self.generator.set_state(restored[0])
        iterator = super().__iter__()  # draws a worker seed from the generator, as every epoch does
        if restored is not None and not restored[1]:  # mid-epoch: that epoch's draws were made already
            self.generator.set_state(restored[0])
        return iterator

    def position(self) -> dict[str, Any]:
        """Where the data stream stands (what :meth:`restore` takes)."""
        return self.sampler.state()

    # Lightning restores a stateful loader's state only when it resumes mid-epoch; a fit
    # resumed at an epoch's end needs it too, so :class:`DataPosition` (a callback, always
    # restored) carries it. Being stateful still tells Lightning that mid-epoch resumption works.
    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`position`'s state at the next ``iter``."""
        self._restored = (state["generator"], bool(state["epoch_done"]))
        if not state["epoch_done"]:
            self.sampler._resume = {"order": state["order"].tolist(), "consumed": state["consumed"],
                                    "finished_draws": state["finished_draws"]}


class DataPosition(Callback):
    """Tell the sampler how many windows of the epoch have been trained on, and carry the
    loader's position in the checkpoint."""

    def __init__(self, loader: ResumableLoader) -> None:
        self.loader = loader

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        self.loader.sampler.consumed = min((batch_idx + 1) * self.loader.batch_size, self.loader.sampler.size)

    def state_dict(self) -> dict[str, Any]:
        return self.loader.position()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.loader.restore(state_dict)


class RandomState(Callback):
    """Save the global torch random state with each checkpoint and restore it on resume.

    It is restored as soon as Lightning hands the callback its state, before the training
    data is set up: a loader without a generator of its own (Darts') draws its epoch's
    shuffle from the global state when the epoch starts.
    """

    def state_dict(self) -> dict[str, Any]:
        state = {"cpu": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["cpu"])
        if "cuda" in state_dict and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


def atomic_save(trainer: pl.Trainer, path: Path) -> None:
    """``trainer.save_checkpoint`` to ``path`` through a temporary file, flushed to disk and
    renamed: a kill during the write leaves the previous checkpoint whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    trainer.save_checkpoint(tmp, weights_only=False)  # the whole state: optimiser, loops, callbacks
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class ResumeCheckpoint(Checkpoint):
    """Write the resume checkpoint every ``every`` training steps (or wall-clock interval),
    mid-epoch only: a step that ends an epoch is not saved.

    A fit resumes mid-epoch along Lightning's well-trodden path. From a checkpoint taken
    after an epoch's last step, a resumed fit would skip that epoch's validation (and the
    state it would have kept); from one taken at the epoch's end, Lightning re-runs the
    epoch-end hooks without the validation metrics (early stopping fails). So the epoch's
    last step is left to the next checkpoint: a kill there replays a few steps more. As a
    ``Checkpoint``, Lightning runs it after the other callbacks, so their state is current.
    """

    def __init__(self, path: Path, every: int | datetime.timedelta) -> None:
        self.path = path
        self.every = every
        self._last_save = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.fit_loop.epoch_loop.batch_progress.is_last_batch:
            return
        if isinstance(self.every, int):
            due = trainer.global_step % self.every == 0
        else:
            due = time.monotonic() - self._last_save >= self.every.total_seconds()
        if due:
            self._save(trainer)

    def _save(self, trainer: pl.Trainer) -> None:
        atomic_save(trainer, self.path)
        self._last_save = time.monotonic()


@dataclasses.dataclass(frozen=True)
class CheckpointPlan:
    """Where and how often a fit writes its resume checkpoint, and whether it resumes."""

    folder: Path
    every: int | datetime.timedelta
    key: str

    @property
    def path(self) -> Path:
        return self.folder / f"{CHECKPOINT_NAME}.ckpt"

    def callback(self) -> ResumeCheckpoint:
        return ResumeCheckpoint(self.path, self.every)

    def resume_from(self) -> Path | None:
        """The checkpoint to resume from: one of this fit, else none (another fit's is
        replaced, with a warning)."""
        if not self.path.is_file():
            return None
        try:
            saved = torch.load(self.path, map_location="cpu", weights_only=True, mmap=True).get(KEY_FIELD)
        except Exception as error:  # noqa: BLE001 - an unreadable file is not resumed from
            warnings.warn(f"{self.path} cannot be read ({type(error).__name__}); starting afresh", stacklevel=3)
            return None
        if saved != self.key:
            warnings.warn(f"{self.path} belongs to another fit (other data or settings); this fit starts afresh "
                          "and replaces it", stacklevel=3)
            return None
        return self.path


def fit_key(network, datasets: tuple[Dataset | None, ...], settings) -> str:
    """A hash of what determines a fit: the network's spec and starting tensors, the
    windows (series and origins) and the training settings."""
    from trace_forecast.engine.snapshot import training_snapshot

    digest = hashlib.sha256()
    ignored = {"verbose", "checkpoint_dir", "checkpoint_every"}
    fields = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings) if f.name not in ignored}
    digest.update(repr(sorted(fields.items(), key=lambda kv: kv[0])).encode())
    digest.update(repr(network.spec).encode())
    for name, (tensor, trainable) in sorted(training_snapshot(network).items()):
        digest.update(f"{name}|{trainable}|".encode())
        digest.update(tensor.float().numpy().tobytes())
    for dataset in datasets:
        if dataset is None:
            digest.update(b"none")
            continue
        for series in getattr(dataset, "series", []):
            digest.update(np.ascontiguousarray(series).tobytes())
        plan = getattr(dataset, "plan", None)
        if plan is not None:
            digest.update(np.ascontiguousarray(plan.origins).tobytes())
        digest.update(f"|{len(dataset)}|".encode())
    return digest.hexdigest()
