"""Checkpoints from strangers: weights load only through safetensors, pickles are never
executed, malformed hub ids never reach the network, and offline mode opens no socket."""

from __future__ import annotations

import pickle
import shutil
import socket

import numpy as np
import pandas as pd
import pytest

from trace_forecast.backbone import load_backbone
from trace_forecast.errors import CheckpointError


class Payload:
    """A pickle that creates a file when it is unpickled (what an attacker would ship)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile_folder(tiny_backbone_dir, tmp_path, weights_name: str):
    folder = shutil.copytree(tiny_backbone_dir, tmp_path / "hostile")
    (folder / "model.safetensors").unlink()
    marker = tmp_path / "executed"
    (folder / weights_name).write_bytes(pickle.dumps(Payload(str(marker))))
    return folder, marker


def test_pickled_weights_beside_the_config_are_refused_unexecuted(tiny_backbone_dir, tmp_path):
    folder, marker = _hostile_folder(tiny_backbone_dir, tmp_path, "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_backbone(folder)
    assert not marker.exists()


def test_a_pickle_named_model_safetensors_is_refused_unexecuted(tiny_backbone_dir, tmp_path):
    folder, marker = _hostile_folder(tiny_backbone_dir, tmp_path, "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model.safetensors is corrupted or truncated"):
        load_backbone(folder)
    assert not marker.exists()


def test_the_package_never_unpickles_weights_with_torch_load():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "trace_forecast"
    for path in root.rglob("*.py"):
        text = path.read_text()
        for line in text.splitlines():
            if "torch.load(" in line:
                assert "weights_only=True" in line, f"{path}: {line.strip()}"


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection fails the test."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.mark.parametrize("bad_id", ["AutonLab/..", "AutonLab/MOMENT--1", "a/.hidden"])
def test_malformed_hub_ids_are_refused_before_any_request(bad_id, no_network):
    with pytest.raises(CheckpointError, match="neither an existing folder nor a valid hub id"):
        load_backbone(bad_id)
    assert no_network == []


def test_offline_mode_never_opens_a_socket(no_network, monkeypatch, tmp_path, tiny_backbone_dir):
    import huggingface_hub.constants as constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(CheckpointError, match="not in the local Hugging Face cache"):
        load_backbone("AutonLab/MOMENT-1-small")
    from trace_forecast import TraceForecaster

    y = pd.Series(np.sin(np.arange(120) / 3))
    TraceForecaster(backbone=str(tiny_backbone_dir), context_length=32, max_windows=32, random_state=0).fit(
        y, fh=[1]).predict()
    load_backbone(None)  # the embedded backbone
    assert no_network == []
