"""Does the pretrained backbone matter? The same recipe on the embedded backbone and on a
randomly initialised one of the same shape, and with and without the predicted future.

``python -m benchmarks.backbone_ablation`` writes ``benchmarks/results/backbone_ablation.json``.
Protocol as ``benchmarks.long_horizon`` (quick profile: every 4th ETTh1 test window),
default ``TraceForecaster`` otherwise, seed 0.
"""

from __future__ import annotations

import dataclasses
import tempfile

import torch

from benchmarks.harness import PROFILES, Record, channel_windows, main
from benchmarks.long_horizon import DATASETS, load_split, lookback_of, run_trace

BACKBONES = ("pretrained", "random")
FUTURE_PATCHES = ("auto", 0)


KEY = ("dataset", "horizon", "backbone", "future_patches")


def run(args, record: Record) -> None:
    from trace_forecast.backbone import MomentBackbone, load_backbone, save_backbone
    from trace_forecast.parameters import default

    stride = PROFILES["quick"].test_stride
    # The default estimator's training (run_trace takes windows and epochs from a profile).
    profile = dataclasses.replace(PROFILES["quick"], max_windows=default("max_windows"), epochs=default("max_epochs"))
    record.protocol["test_stride_etth1"] = stride
    with tempfile.TemporaryDirectory() as tmp:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            save_backbone(MomentBackbone(load_backbone(None).config), tmp)
        sources = {"pretrained": None, "random": tmp}
        for name, spec in DATASETS.items():
            split, lookback = load_split(name), lookback_of(name)
            for horizon in spec["horizons"]:
                hist, fut = channel_windows(split.test, lookback, horizon, stride if name == "ETTh1" else 1)
                for backbone in BACKBONES:
                    for future_patches in FUTURE_PATCHES:
                        params = {"backbone": sources[backbone], "future_patches": future_patches}
                        r = run_trace(split, horizon, None, params, profile, 0, hist, fut, lookback)
                        record.add({"dataset": name, "horizon": horizon, "backbone": backbone,
                                    "future_patches": future_patches, "fit_seconds": r["fit_seconds"], "mse": r["mse"]})


if __name__ == "__main__":
    main(__name__)
