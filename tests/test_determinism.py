"""Same seed, data and device: bit-identical adapter weights, Gated DSIC selections and
predictions on CPU, in a fresh process and in the test worker, which may have run other tests
first (for the forecaster and the detector)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import sys, warnings
import numpy as np, pandas as pd, torch
from trace_forecast import TraceAnomalyDetector, TraceForecaster

warnings.simplefilter("ignore")
backbone, out = sys.argv[1], sys.argv[2]
t = np.arange(300)
y = pd.Series(10 + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, 300))
common = dict(backbone=backbone, context_length=64, batch_size=16, random_state=7, dsic_interval=2, dsic_draws=2)
f = TraceForecaster(max_epochs=2, **common).fit(y, fh=[1, 2, 3])
d = TraceAnomalyDetector(max_epochs=1, **common).fit(y.to_frame())
torch.save({
    "forecast": torch.as_tensor(f.predict().to_numpy()),
    "intervals": torch.as_tensor(f.predict_interval(coverage=0.9).to_numpy()),
    "selection": torch.as_tensor(f.selection_history_["kept"].to_numpy()),
    "importance": torch.as_tensor(f.selection_history_["importance"].to_numpy()),
    "weights": {n: p.detach().clone() for n, p in f.network_.named_parameters() if p.requires_grad},
    "scores": torch.as_tensor(np.asarray(d.transform_scores(y.to_frame()), dtype=float)),
    "detector_weights": {n: p.detach().clone() for n, p in d.network_.named_parameters() if p.requires_grad},
}, out)
"""


@pytest.mark.slow
def test_a_fresh_process_and_the_test_worker_give_bit_identical_fits(tiny_backbone_dir, tmp_path, monkeypatch):
    fresh, used = tmp_path / "fresh.pt", tmp_path / "used.pt"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT), str(tiny_backbone_dir), str(fresh)],
                          capture_output=True, text=True, cwd=ROOT, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    # The same script in this worker, whose torch generator, shared backbone and caches other
    # tests may have used before (one torch thread in both: conftest.py sets OMP_NUM_THREADS,
    # which the fresh process inherits).
    monkeypatch.setattr(sys, "argv", ["-c", str(tiny_backbone_dir), str(used)])
    exec(compile(textwrap.dedent(SCRIPT), "determinism script", "exec"), {"__name__": "__main__"})
    first, second = torch.load(fresh, weights_only=True), torch.load(used, weights_only=True)
    for key in ("forecast", "intervals", "selection", "importance", "scores"):
        assert torch.equal(first[key], second[key]), key
    for key in ("weights", "detector_weights"):
        assert first[key].keys() == second[key].keys()
        for name in first[key]:
            assert torch.equal(first[key][name], second[key][name]), f"{key}: {name}"
