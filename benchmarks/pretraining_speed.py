"""How fast a pretraining step runs on this machine, and what makes it faster.

``python -m benchmarks.pretraining_speed`` writes ``results/pretraining_speed.json``: windows
per second of one optimiser step (forward, backward, AdamW) of the embedded backbone's
architecture on the pretraining objective, in fp32 and in bf16 autocast (what
``python -m trace_forecast.pretrain`` uses where the CPU multiplies bf16 natively), eager and
through ``torch.compile`` (``pretrain --compile``), at batch sizes 64 and 128 and 1 or all
torch threads; and the data pipeline's windows per second
(the corpus windows with their masks, as a leg draws them). Medians of ``--repeats`` timed
steps after warm-up steps. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks.harness import Record, main


def step_speed(batch_size: int, precision: str, threads: int, repeats: int, compiled: bool = False) -> float:
    from trace_forecast.backbone import load_backbone
    from trace_forecast.losses import masked_reconstruction_loss
    from trace_forecast.network import random_patch_mask

    torch.set_num_threads(threads)
    backbone = load_backbone(None).train()
    optimizer = torch.optim.AdamW(backbone.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch_size, 1, 512, generator=g).cumsum(-1)
    input_mask = torch.ones(batch_size, 512)
    mask = random_patch_mask(input_mask, 8, 0.3, g)

    objective = torch.compile(masked_reconstruction_loss, dynamic=False) if compiled else masked_reconstruction_loss

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss = objective(backbone, x, input_mask, mask, visible_weight=0.5)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    for _ in range(3):  # warm-up (and compilation)
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return batch_size / statistics.median(times)


def pipeline_speed(data_dir: str, windows: int = 2000) -> float:
    from trace_forecast.pretrain import corpus_mixtures, parse_args, synthetic_series
    from trace_forecast.pretraining.windows import PretrainWindows

    args = parse_args(["--out", "unused", "--data-dir", data_dir, "--corpus", "--synthetic", "2000",
                       "--coarse-share", "0.3"])
    train, _, _ = corpus_mixtures(args, synthetic_series(args))
    ds = PretrainWindows([], 10**9, 512, 8, seed=0, mixture=train, tail_share=0.5, max_tail_patches=32,
                         mask_ratio=(0.15, 0.5))
    start = time.perf_counter()
    for i in range(windows):
        ds[i]
    return windows / (time.perf_counter() - start)


def options(parser) -> None:
    parser.add_argument("--repeats", type=int, default=10)


def run(args, record: Record) -> None:
    from trace_forecast.datasets import shared_data_dir
    from trace_forecast.engine.precision import native_bf16

    cores = torch.get_num_threads()
    for threads in sorted({1, cores}):
        for batch_size in (64, 128):
            for precision in ("fp32", "bf16"):
                for compiled in (False, True):
                    speed = step_speed(batch_size, precision, threads, args.repeats, compiled)
                    record.add({"threads": threads, "batch_size": batch_size, "precision": precision,
                                "compiled": compiled, "windows_per_s": round(speed, 1)})
    record.summary.update(native_bf16=native_bf16(), pipeline_windows_per_s=round(
        pipeline_speed(str(shared_data_dir() / "pretraining")), 1))


if __name__ == "__main__":
    main(__name__)
