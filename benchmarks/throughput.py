"""Training throughput and peak memory at MOMENT's sizes: TRACE vs the same gated LoRA
without Gated DSIC vs PEFT LoRA vs linear probing vs full fine-tuning, with random weights
(speed does not depend on them).

Each method trains ``--steps`` optimiser steps through the package's Lightning engine
(Gated DSIC with its default schedule for TRACE: its importance evaluations are part of
the cost) on synthetic windows of length 512, H = 96, in a fresh process of its own so
that peak memory is its own. Throughput is samples/s from the mean interval between
consecutive training-batch starts, the first one (set-up, warm-up) excluded; every
callback, Gated DSIC's included, falls inside those intervals. On CUDA: bf16 mixed
precision and ``torch.cuda.max_memory_allocated``; on CPU: fp32 and peak RSS. The
Gated DSIC cost is printed as TRACE's step time and peak memory over those of the same
gated LoRA without selection (same backbone, batch and adapter set).

``python -m benchmarks.throughput --size large --batch-size 32 --steps 40``  (GPU)
``python -m benchmarks.throughput --size small --batch-size 8 --steps 40 --device cpu``  (run on a 2-core CPU)
"""

from __future__ import annotations

import time

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback

from benchmarks.harness import PeakMemory, Record, main
from trace_forecast.backbone import MomentBackbone, moment_config
from trace_forecast.engine import DSICSettings, TrainSettings, WindowDataset, fit_network
from trace_forecast.engine.windows import WindowPlan
from trace_forecast.network import NetworkSpec, build_network
from trace_forecast.parameter_count import parameter_report

METHODS = {
    "TRACE": {"adapter": "gated_dsic", "head": "reconstruction"},
    "gated LoRA without Gated DSIC": {"adapter": "gated_dsic", "head": "reconstruction", "selection": False},
    "LoRA (PEFT) + recon head": {"adapter": "lora", "head": "reconstruction"},
    "linear probing": {"adapter": "none", "head": "linear"},
    "full fine-tuning": {"adapter": "full", "head": "linear"},
}
CONTEXT, HORIZON = 512, 96


def synthetic_windows(n: int, seed: int = 0) -> WindowDataset:
    rng = np.random.default_rng(seed)
    length = CONTEXT + HORIZON + n
    series = [np.cumsum(rng.standard_normal(length)).astype(np.float32)]
    origins = np.stack([np.zeros(n, dtype=np.int64), CONTEXT + np.arange(n)], axis=1)
    return WindowDataset(series, WindowPlan(origins), CONTEXT, HORIZON)


class StepTimer(Callback):
    """Wall-clock time at the start of every training batch."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer, pl_module) -> None:
        self.on_train_batch_start(trainer, pl_module, None, -1)

    def seconds_per_step(self) -> float:
        return float(np.mean(np.diff(self.starts)[1:]))


def train_step_seconds(backbone, params: dict, steps: int, batch_size: int, device: str) -> tuple[float, dict]:
    params = dict(params)
    selection = params.pop("selection", True)
    spec = NetworkSpec(horizon=HORIZON, context_length=CONTEXT, **params)
    network = build_network(backbone, spec, seed=0)
    data = synthetic_windows(steps * batch_size)
    settings = TrainSettings(max_epochs=1, max_steps=steps, batch_size=batch_size, device=device,
                             early_stopping_patience=0, random_state=0,
                             dsic=DSICSettings() if selection else None)
    timer = StepTimer()
    fit_network(network, data, None, settings, extra_callbacks=[timer])
    return timer.seconds_per_step(), parameter_report(network)


def measure(size: str, method: str, steps: int, batch_size: int, device: str) -> dict:
    """One method's row (run in a fresh process)."""
    torch.set_num_threads(torch.get_num_threads())
    torch.manual_seed(0)
    backbone = MomentBackbone(moment_config(size))
    with PeakMemory() as mem:
        step_seconds, report = train_step_seconds(backbone, METHODS[method], steps, batch_size, device)
    return {
        "size": size, "method": method, "batch_size": batch_size, "steps": steps, "device": device,
        "precision": "bf16-mixed" if torch.cuda.is_available() and device != "cpu" else "32-true",
        "samples_per_s": batch_size / step_seconds, "seconds_per_step": step_seconds,
        "trainable_parameters": int(report["total_trainable"]), "backbone_parameters": int(report["backbone_total"]),
        "peak_rss_mb": mem.peak_rss / 2**20, "peak_cuda_mb": None if mem.peak_cuda is None else mem.peak_cuda / 2**20,
    }


def dsic_cost(rows: list[dict]) -> dict | None:
    """TRACE's step time and peak memory over the same gated LoRA without selection."""
    by = {r["method"]: r for r in rows}
    trace, plain = by.get("TRACE"), by.get("gated LoRA without Gated DSIC")
    if trace is None or plain is None:
        return None
    memory = "peak_cuda_mb" if trace["peak_cuda_mb"] is not None else "peak_rss_mb"
    return {"step_time_ratio": trace["seconds_per_step"] / plain["seconds_per_step"],
            "peak_memory_ratio": trace[memory] / plain[memory], "memory": memory}


TRAINED = [m for m in METHODS if METHODS[m].get("fit_strategy") != "zero-shot"]  # steps need training
KEY = ("size", "method", "batch_size", "device")


def options(parser) -> None:
    parser.add_argument("--size", choices=("small", "base", "large"), default="large")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--methods", nargs="*", choices=TRAINED, default=None)


def result_name(args) -> str:
    return f"throughput_{args.size}_{'gpu' if torch.cuda.is_available() and args.device != 'cpu' else 'cpu'}"


def run(args, record: Record) -> None:
    """Each method in a fresh process of its own, so that its peak memory is its own."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    for method in args.methods or TRAINED:
        with ProcessPoolExecutor(max_workers=1, mp_context=mp.get_context("spawn")) as pool:
            record.add(pool.submit(measure, args.size, method, args.steps, args.batch_size, args.device).result())
    record.summary["dsic_cost"] = cost = dsic_cost(record.rows)
    if cost:
        print(f"Gated DSIC cost: {cost['step_time_ratio']:.2f}x the step time and {cost['peak_memory_ratio']:.2f}x "
              f"the peak memory ({cost['memory']}) of the same gated LoRA without selection")


if __name__ == "__main__":
    main(__name__)
