"""Fine-tunes that survive interruption: a fit killed with SIGKILL and resumed from its
checkpoint ends exactly as the uninterrupted fit.

Each fit runs in a child process forked from the test's (``resume_child.py``,
``resume_darts_child.py``; both also run as scripts): the child shares nothing with the fit it
resumes but the checkpoint on disk, and skips a fresh interpreter's 7 s of imports."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import finished, forked, needs_fork
from torch.utils.data import DataLoader, TensorDataset

from trace_forecast.engine.resume import ResumableLoader, atomic_save


def _child(folder: str, kill_at: int, out: Path, adapter: str) -> multiprocessing.Process:
    from resume_child import main

    return forked(main, folder, kill_at, str(out), adapter)


@pytest.mark.slow
@needs_fork
def test_a_fit_killed_at_a_random_step_resumes_bit_for_bit(tmp_path):
    """10 steps, a checkpoint every 2: killed after a random step in 3..10, resumed from the
    checkpoint before it, the forecasts, losses and Gated DSIC's rounds equal an
    uninterrupted fit's (CPU, fp32, seed fixed). The adapter is Gated DSIC or AdaLoRA (its
    rank allocator has state of its own), drawn at random too."""
    rng = np.random.default_rng()
    kill_at, adapter = int(rng.integers(3, 11)), str(rng.choice(["gated_dsic", "adalora"]))
    reference = _child("-", 0, tmp_path / "reference.json", adapter)  # runs beside the interrupted one
    killed = _child(str(tmp_path / "ckpt"), kill_at, tmp_path / "never.json", adapter)
    assert finished(killed) == -9
    assert (tmp_path / "ckpt" / "resume.ckpt").is_file() and not (tmp_path / "never.json").exists()
    resumed = _child(str(tmp_path / "ckpt"), 0, tmp_path / "resumed.json", adapter)
    assert finished(resumed) == 0
    assert finished(reference) == 0
    expected = json.loads((tmp_path / "reference.json").read_text())
    got = json.loads((tmp_path / "resumed.json").read_text())
    assert expected["kept"] != "start", "the fit must train for the test to mean something"
    assert got == expected, f"{adapter} killed after step {kill_at}"


@pytest.mark.slow
@needs_fork
def test_a_darts_fit_killed_mid_epoch_resumes_from_darts_checkpoint(tmp_path):
    """Darts' own convention: ``save_checkpoints=True`` writes a checkpoint per epoch;
    ``TraceModel.load_from_checkpoint(..., best=False)`` and ``fit`` continue from the last
    one. 3 epochs of 5 steps, killed in epoch 2 or 3: the forecast equals an uninterrupted
    fit's."""
    pytest.importorskip("darts")
    kill_at = int(np.random.default_rng().integers(6, 15))

    from resume_darts_child import main

    def child(mode: str, kill: int, out: str) -> multiprocessing.Process:
        return forked(main, str(tmp_path / "work"), mode, kill, str(tmp_path / out))

    reference = child("plain", 0, "reference.json")
    killed = child("fresh", kill_at, "never.json")
    assert finished(killed) == -9
    resumed = child("resume", 0, "resumed.json")
    assert finished(resumed) == 0
    assert finished(reference) == 0
    expected = json.loads((tmp_path / "reference.json").read_text())
    assert expected["steps"] == 15
    assert json.loads((tmp_path / "resumed.json").read_text()) == expected, f"killed after step {kill_at}"


def test_resumable_loader_shuffles_as_dataloader_does():
    """Bit-identical fits need the same order as ``DataLoader(shuffle=True)`` epoch after epoch."""
    data = TensorDataset(torch.arange(37))
    plain = DataLoader(data, batch_size=5, shuffle=True, generator=torch.Generator().manual_seed(3))
    ours = ResumableLoader(data, 5, torch.Generator().manual_seed(3))
    for _ in range(3):
        assert [b[0].tolist() for b in plain] == [b[0].tolist() for b in ours]


@pytest.mark.parametrize("consumed_batches", [1, 3, 8])
def test_resumable_loader_restarts_where_training_stood(consumed_batches):
    """Position ``k`` batches into epoch 2 (8 batches an epoch: 8 is its end) restores the
    rest of that epoch and the epochs after it. (Lightning fetches a batch as soon as an
    epoch starts, so a checkpoint never falls between the start and the first batch.)"""
    data = TensorDataset(torch.arange(37))
    reference = ResumableLoader(data, 5, torch.Generator().manual_seed(1))
    epochs = [[b[0].tolist() for b in reference] for _ in range(3)]
    loader = ResumableLoader(data, 5, torch.Generator().manual_seed(1))
    list(loader)  # epoch 1
    iterator = iter(loader)
    for _ in range(consumed_batches):
        next(iterator)
    loader.sampler.consumed = min(consumed_batches * 5, 37)
    if consumed_batches == 8:
        with pytest.raises(StopIteration):  # the epoch's last draw, as Lightning's prefetch makes it
            next(iterator)
    state = loader.position()
    fresh = ResumableLoader(data, 5, torch.Generator().manual_seed(99))
    fresh.restore(state)
    rest = [[b[0].tolist() for b in fresh] for _ in range(2 if consumed_batches < 8 else 1)]
    expected = ([epochs[1][consumed_batches:], epochs[2]] if consumed_batches < 8 else [epochs[2]])
    assert rest == expected


def test_checkpoints_are_written_atomically(tmp_path):
    class Trainer:  # writes what it is given, or dies halfway through the file
        def __init__(self, checkpoint, crash=False):
            self.checkpoint, self.crash = checkpoint, crash

        def save_checkpoint(self, path, weights_only=None):
            with open(path, "wb") as fh:
                torch.save(self.checkpoint, fh)
                if self.crash:
                    fh.truncate(10)
                    raise OSError("disk full")

    path = tmp_path / "resume.ckpt"
    atomic_save(Trainer({"step": 1}), path)
    with pytest.raises(OSError):
        atomic_save(Trainer({"step": 2}, crash=True), path)
    assert torch.load(path, weights_only=True) == {"step": 1}  # the previous checkpoint is whole


def test_a_checkpoint_of_another_fit_is_replaced(tmp_path):
    from sktime.datasets import load_airline

    from trace_forecast import TraceForecaster

    y = load_airline()
    params = {"context_length": 32, "max_epochs": 1, "max_windows": 100, "batch_size": 32, "random_state": 0,
              "checkpoint_dir": tmp_path, "checkpoint_every": 1}
    first = TraceForecaster(**params).fit(y, fh=[1, 2])
    assert (tmp_path / "resume.ckpt").is_file()
    again = TraceForecaster(**params).fit(y, fh=[1, 2])  # same fit: resumes from its end
    np.testing.assert_array_equal(first.predict().to_numpy(), again.predict().to_numpy())
    with pytest.warns(UserWarning, match="belongs to another fit"):
        TraceForecaster(**params).fit(y.iloc[:-5], fh=[1, 2])


def test_checkpoints_by_wall_clock_and_from_the_detector(tmp_path):
    import datetime

    import pandas as pd

    from trace_forecast import TraceAnomalyDetector

    t = np.arange(600)
    x = pd.DataFrame({"x": np.sin(2 * np.pi * t / 24) + np.random.default_rng(0).normal(0, 0.1, len(t))})
    detector = TraceAnomalyDetector(context_length=32, max_epochs=1, max_windows=96, batch_size=16, random_state=0,
                                    checkpoint_dir=tmp_path, checkpoint_every=datetime.timedelta(microseconds=1))
    detector.fit(x)
    state = torch.load(tmp_path / "resume.ckpt", weights_only=True)
    assert state["global_step"] >= 1 and "DataPosition" in state["callbacks"]
    again = TraceAnomalyDetector(**detector.get_params()).fit(x)  # the same fit: resumes from it
    np.testing.assert_array_equal(again.transform_scores(x).to_numpy(), detector.transform_scores(x).to_numpy())
