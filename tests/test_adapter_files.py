"""Adapters as files: round trips between front ends, and every damaged or mismatched
folder refused before anything changes."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sktime.datasets import load_airline

from trace_forecast import TraceAnomalyDetector, TraceForecaster
from trace_forecast.backbone import save_backbone, shared_backbone
from trace_forecast.errors import AdapterFileError, UncalibratedIntervalsWarning
from trace_forecast.tasks.adapter_folder import (
    CONFIG_NAME,
    TENSORS_NAME,
    backbone_fingerprint,
    read_adapter_folder,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = {"context_length": 32, "max_epochs": 1, "max_windows": 48, "batch_size": 16, "random_state": 0,
        "dsic_interval": 1, "dsic_draws": 2, "validation_fraction": 0.0}


@pytest.fixture(scope="module")
def fitted():
    y = load_airline()
    with pytest.warns(UncalibratedIntervalsWarning):  # nothing held out, so the adapters train
        return y, TraceForecaster(**TINY).fit(y, fh=[1, 2, 3])


@pytest.fixture
def folder(fitted, tmp_path) -> Path:
    return fitted[1].save_adapters(tmp_path / "adapters")


def _rewrite_config(folder: Path, change) -> None:
    """Edit the config and re-sign it, as a newer release (or a forger) would."""
    from trace_forecast.tasks.adapter_folder import _checksum

    config = json.loads((folder / CONFIG_NAME).read_text())
    config.pop("checksum")
    change(config)
    config["checksum"] = _checksum(config)
    (folder / CONFIG_NAME).write_text(json.dumps(config))


def test_round_trip_is_exact_and_small(fitted, folder):
    y, forecaster = fitted
    loaded = TraceForecaster.load_adapters(folder)
    assert loaded.get_params()["context_length"] == 32 and not loaded.is_fitted
    loaded.fit(y, fh=[1, 2, 3])
    pd.testing.assert_frame_equal(loaded.predict_interval(coverage=0.8), forecaster.predict_interval(coverage=0.8))
    pd.testing.assert_series_equal(loaded.predict(), forecaster.predict())
    assert loaded.trainable_parameters_ == forecaster.trainable_parameters_
    pd.testing.assert_frame_equal(loaded.selected_modules_, forecaster.selected_modules_, check_dtype=False)
    assert sum(f.stat().st_size for f in folder.iterdir()) < 100_000


def test_same_folder_loads_into_the_detector_and_darts(fitted, folder):
    pytest.importorskip("darts")
    from darts import TimeSeries

    from trace_forecast.darts import TraceModel

    y, forecaster = fitted
    detector = TraceAnomalyDetector.load_adapters(folder).fit(y.to_frame())
    assert detector.transform_scores(y.to_frame()).shape == (len(y), 1)
    model = TraceModel.load_adapters(folder, pl_trainer_kwargs={"enable_progress_bar": False, "accelerator": "cpu"})
    series = TimeSeries.from_series(y.astype("float32").reset_index(drop=True))
    model.fit(series)  # trains nothing
    np.testing.assert_allclose(model.predict(3).values()[:, 0], forecaster.predict().to_numpy(), rtol=1e-5)
    model.save_adapters(folder.parent / "from_darts")
    again = TraceForecaster.load_adapters(folder.parent / "from_darts").fit(y, fh=[1, 2, 3])
    np.testing.assert_allclose(again.predict().to_numpy(), forecaster.predict().to_numpy(), rtol=1e-5)


def test_unfitted_estimators_have_no_adapters_to_save(tmp_path):
    from sktime.exceptions import NotFittedError

    for estimator in (TraceForecaster(), TraceAnomalyDetector()):
        with pytest.raises(NotFittedError):   # the forecaster raised AttributeError on `residuals_`
            estimator.save_adapters(tmp_path / "adapters")
    assert not (tmp_path / "adapters").exists()


def test_forecaster_refuses_a_scoring_only_folder(tmp_path):
    X = load_airline().to_frame()
    detector = TraceAnomalyDetector(context_length=32, max_epochs=1, max_windows=32, batch_size=16).fit(X)
    detector.save_adapters(tmp_path / "scorer")
    with pytest.raises(ValueError, match="without a forecasting head"):
        TraceForecaster.load_adapters(tmp_path / "scorer")
    again = TraceAnomalyDetector.load_adapters(tmp_path / "scorer").fit(X)
    np.testing.assert_allclose(again.transform_scores(X).to_numpy(), detector.transform_scores(X).to_numpy(), rtol=1e-6)


@pytest.mark.parametrize("damage, message", [
    (lambda f: (f / TENSORS_NAME).write_bytes((f / TENSORS_NAME).read_bytes()[:-100]), "truncated"),
    (lambda f: _flip(f / TENSORS_NAME, 500), "damaged"),
    (lambda f: _flip(f / CONFIG_NAME, 40), "damaged"),
    (lambda f: (f / TENSORS_NAME).unlink(), "incomplete"),
    (lambda f: (f / CONFIG_NAME).unlink(), "not an adapter folder"),
    (lambda f: _rewrite_config(f, lambda c: c.update(format_version=2)), "upgrade trace_forecast"),
    (lambda f: _rewrite_config(f, lambda c: c["spec"].update(lora_rank=4)), "do not fit"),
    (lambda f: _rewrite_config(f, lambda c: c.pop("spec")), "malformed"),
])
def test_damaged_folders_are_refused(folder, damage, message):
    before = backbone_fingerprint(shared_backbone(None))
    damage(folder)
    with pytest.raises(AdapterFileError, match=message):
        TraceForecaster.load_adapters(folder)
    assert backbone_fingerprint(shared_backbone(None)) == before
    fresh = shared_backbone(None)
    assert not hasattr(fresh, "gated_lora")


def _flip(path: Path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position % len(data)] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_different_backbone_is_refused(folder, tmp_path):
    other = shared_backbone(None)
    copy = type(other)(other.config)
    copy.load_state_dict(other.state_dict())
    with torch.no_grad():
        next(copy.parameters()).add_(1e-3)
    save_backbone(copy, tmp_path / "other", moment_compatible=False)
    with pytest.raises(AdapterFileError, match="different backbone"):
        TraceForecaster.load_adapters(folder, backbone=str(tmp_path / "other"))
    same = tmp_path / "same"  # another copy of the same weights loads
    save_backbone(other, same, moment_compatible=False)
    assert read_adapter_folder(folder, backbone=str(same)).network is not None


def test_fuzzed_bytes_never_load_something_else(folder, tmp_path):
    """Every single-byte change is refused, or (whitespace in the JSON) reads the same."""
    reference = read_adapter_folder(folder).network.state_dict()
    rng = np.random.default_rng(0)
    for name in (TENSORS_NAME, CONFIG_NAME):
        size = (folder / name).stat().st_size
        for position in rng.integers(0, size, 12):
            damaged = tmp_path / f"fuzz_{name}_{position}"
            shutil.copytree(folder, damaged)
            data = bytearray((damaged / name).read_bytes())
            data[position] = (data[position] + int(rng.integers(1, 256))) % 256
            (damaged / name).write_bytes(bytes(data))
            try:
                state = read_adapter_folder(damaged).network.state_dict()
            except AdapterFileError:
                continue
            assert all(torch.equal(state[k], reference[k]) for k in reference)


def test_folder_of_the_previous_release_still_loads():
    folder = FIXTURES / "adapters_0.1.0"
    expected = json.loads((folder / "expected.json").read_text())
    recorded = json.loads((folder / CONFIG_NAME).read_text())["backbone"]["sha256"]
    if backbone_fingerprint(shared_backbone(None)) != recorded:  # the embedded backbone has moved on
        with pytest.raises(AdapterFileError, match="different backbone"):
            TraceForecaster.load_adapters(folder)
        return
    forecaster = TraceForecaster.load_adapters(folder).fit(load_airline(), fh=expected["fh"])
    np.testing.assert_allclose(forecaster.predict().to_numpy(), expected["forecast"], rtol=1e-5)
    np.testing.assert_allclose(forecaster.predict_interval(coverage=0.9).to_numpy(), expected["interval_90"],
                               rtol=1e-5)


def test_nothing_in_the_folder_is_executed(folder):
    """The tensors are safetensors (no pickle) and the config is JSON."""
    assert (folder / TENSORS_NAME).read_bytes()[8:9] == b"{"  # safetensors: 8-byte length, JSON header
    json.loads((folder / CONFIG_NAME).read_text())
    assert hashlib.sha256((folder / TENSORS_NAME).read_bytes()).hexdigest() == \
        json.loads((folder / CONFIG_NAME).read_text())["tensors"]["sha256"]
