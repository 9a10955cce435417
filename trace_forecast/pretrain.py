"""Pretrain a MOMENT-layout backbone: ``python -m trace_forecast.pretrain --out DIR``.

Objective: MOMENT's masked-patch reconstruction (a share of the observed patches hidden)
and, as our addition, a share of windows whose *last* patches are hidden, so the
reconstruction head learns to extend a series (what TRACE's reconstruction-based
forecasting head builds on). Data: the synthetic generator plus, when given, the real
sources of ``../shared/data/pretraining`` (never the evaluation data sets). Training runs
on Lightning (CPU or GPU; bf16 mixed precision where the hardware has it), logs loss
curves to ``DIR/logs``, checkpoints to ``DIR/checkpoints/last.ckpt`` (``--resume``
continues from it) and writes ``config.json`` + ``model.safetensors`` into ``DIR``.

``--campaign FOLDER`` makes the run one leg of a campaign
(:mod:`trace_forecast.pretraining.campaign`): it continues from ``FOLDER/checkpoint.ckpt``
when there is one, checkpoints there, and records the leg in ``FOLDER/legs.json``.
The pieces live in :mod:`trace_forecast.pretraining`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EMAWeightAveraging
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader

from trace_forecast.backbone import MomentBackbone, save_backbone
from trace_forecast.engine.precision import native_bf16
from trace_forecast.errors import DataError
from trace_forecast.pretraining.campaign import (
    CHECKPOINT,
    PeriodicCheckpoint,
    read_legs,
)
from trace_forecast.pretraining.corpus import (
    SOURCE_NAMES,
    default_weights,
    load_corpus,
    load_m4_file,
    split_heldout,
)
from trace_forecast.pretraining.mixture import COARSE_FACTORS, SourceMixture
from trace_forecast.pretraining.module import (
    SCHEDULES,
    PretrainModule,
    build_config,
    forecast_check,
    heldout_loss_by_source,
    stream_position,
)
from trace_forecast.pretraining.synthetic import (
    generate_corpus,
    generate_corpus_parallel,
)
from trace_forecast.pretraining.windows import PretrainWindows, WindowStream

__all__ = ["main", "parse_args", "load_pretraining_series", "PretrainWindows", "build_config"]


def load_pretraining_series(data_dir: str | Path) -> list[np.ndarray]:
    """M4 weekly series (train followed by test values) from ``data_dir/M4``."""
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataError(f"pretraining data folder {folder} does not exist")
    files = sorted(folder.glob("M4/*-train.csv"))
    if not files:
        raise DataError(f"pretraining data folder {folder} holds no M4/*-train.csv file")
    series = []
    for train_file in files:
        train = load_m4_file(train_file)
        test_file = train_file.with_name(train_file.name.replace("-train", "-test"))
        test = load_m4_file(test_file) if test_file.is_file() else {}
        for key, values in train.items():
            full = np.concatenate([values, test.get(key, np.empty(0))])
            if len(full) >= 16:
                series.append(full.astype(np.float32))
    if not series:
        raise DataError(f"no usable series in {folder}")
    return series


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder (MOMENT layout)")
    p.add_argument("--data-dir", default=None, help="folder with M4/*-train.csv (e.g. ../shared/data/pretraining)")
    p.add_argument("--synthetic", type=int, default=4000, help="number of synthetic series")
    p.add_argument("--steps", type=int, default=4000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--d-ff", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--tail-share", type=float, default=0.3, help="share of windows with a hidden tail")
    p.add_argument("--max-tail-patches", type=int, default=12, help="longest hidden tail, in patches")
    p.add_argument("--mask-ratio", type=float, nargs="+", default=[0.3],
                   help="hidden share of patches in the other windows: a number or LOW HIGH")
    p.add_argument("--intermittent-share", type=float, default=0.0, help="share of intermittent synthetic series")
    p.add_argument("--real-share", type=float, default=0.0,
                   help="probability of drawing a window from --data-dir (0 = uniformly over all series)")
    p.add_argument("--corpus", action="store_true",
                   help="draw from every real source of --data-dir (trace_forecast.pretraining.corpus), weighted, "
                        "with a held-out slice of each; without it only the M4 weekly files are read")
    p.add_argument("--sources", nargs="+", default=None, choices=SOURCE_NAMES, help="with --corpus: only these")
    p.add_argument("--synthetic-weight", type=float, default=0.2, help="with --corpus: share of synthetic windows")
    p.add_argument("--source-weight", nargs="+", default=None, metavar="NAME=W",
                   help="with --corpus: override a source's mixing weight")
    p.add_argument("--coarse-share", type=float, default=0.0,
                   help="share of windows drawn from a series averaged over 2-24 steps (several resolutions)")
    p.add_argument("--coarse-factors", type=int, nargs="+", default=list(COARSE_FACTORS),
                   help="averaging factors the several-resolution windows draw from")
    p.add_argument("--stream-seed", type=int, default=None,
                   help="seed of the training windows (default --seed; --seed also draws the held-out split, so a "
                        "continued run keeps --seed and takes a new stream seed to see new windows)")
    p.add_argument("--workers", type=int, default=0, help="data-loader and corpus-generation processes")
    p.add_argument("--time-budget", type=float, default=None,
                   help="minutes of training: stop then, with the learning rate annealed over that time "
                        "(replaces --steps' schedule; --steps then only sizes the window stream)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--visible-weight", type=float, default=0.0,
                   help="weight of the visible patches in the loss (0 = MOMENT's hidden-only objective)")
    p.add_argument("--init", default=None, help="start from this checkpoint folder (a second pretraining stage)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=None,
                   help="Lightning precision (default: bf16-mixed on GPUs and on CPUs with native bf16, else 32-true)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--compile", action="store_true",
                   help="compile the training step's objective with torch.compile (faster steps on a CPU "
                        "after a compilation of a minute or so; the weights and checkpoints are unchanged)")
    p.add_argument("--schedule", default=None, choices=SCHEDULES,
                   help="learning-rate schedule (default: time-budget with --time-budget, else one-cycle over "
                        "--steps); constant = warm-up then constant, resumable at any step")
    p.add_argument("--warmup-steps", type=int, default=200, help="warm-up of the time-budget and constant schedules")
    p.add_argument("--cooldown", type=int, nargs=2, default=None, metavar=("START", "STEPS"),
                   help="with --schedule constant: from step START, decay the rate to 0 over STEPS steps "
                        "(1 - sqrt), and stop there")
    p.add_argument("--ema", type=float, default=None,
                   help="keep an exponential moving average of the weights with this decay (e.g. 0.999); "
                        "validation and the saved weights use it")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="stop this run after this many minutes (the schedule does not depend on it)")
    p.add_argument("--campaign", default=None,
                   help="campaign folder: continue from its checkpoint.ckpt, checkpoint there, record the leg in "
                        "its legs.json")
    p.add_argument("--checkpoint-every", type=int, default=250)
    p.add_argument("--resume", action="store_true", help="continue from DIR/checkpoints/last.ckpt")
    p.add_argument("--stop-after", type=int, default=None,
                   help="stop this run after N steps (an interruption; --resume continues the schedule of --steps)")
    p.add_argument("--compact", action="store_true", help="omit the position table from the saved weights")
    p.add_argument("--quiet", action="store_true", help="do not print the summary (it is written to the folder)")
    return p.parse_args(argv)


def synthetic_series(args: argparse.Namespace) -> list[np.ndarray]:
    """The synthetic part of the corpus (``--synthetic`` series, 128 to 1,024 steps)."""
    if args.workers > 1:
        return generate_corpus_parallel(args.synthetic, args.workers, seed=args.seed, min_length=128,
                                        max_length=1024, intermittent_share=args.intermittent_share)
    return generate_corpus(args.synthetic, 128, 1024, seed=args.seed, intermittent_share=args.intermittent_share)


def corpus_mixtures(args: argparse.Namespace, synthetic: list[np.ndarray]) -> tuple[SourceMixture, SourceMixture, dict]:
    """Training and held-out mixtures over every real source (``--corpus``) and the synthetic
    series: real sources weighted by :func:`default_weights` to share ``1 - synthetic_weight``."""
    corpus = load_corpus(args.data_dir, args.sources)
    splits = {name: split_heldout(series, seed=args.seed) for name, series in corpus.items()}
    order = np.random.default_rng(args.seed).permutation(len(synthetic))  # a seeded 5 %, as for --data-dir alone
    n_held = max(1, len(synthetic) // 20)
    splits["synthetic"] = ([synthetic[i] for i in order[n_held:]], [synthetic[i] for i in order[:n_held]])
    real_weights = default_weights({name: train for name, (train, _) in splits.items() if name != "synthetic"})
    weights = {name: (1 - args.synthetic_weight) * w for name, w in real_weights.items()}
    weights["synthetic"] = args.synthetic_weight
    for item in args.source_weight or []:
        name, value = item.split("=")
        weights[name] = float(value)
    coarse = dict(coarse_share=args.coarse_share, coarse_factors=tuple(args.coarse_factors))
    train = SourceMixture({n: t for n, (t, _) in splits.items()}, weights, **coarse)
    held = SourceMixture({n: h for n, (_, h) in splits.items()}, weights, **coarse)
    summary = {name: {"series": len(corpus.get(name, synthetic)), "train_values": int(sum(map(len, t))),
                      "heldout_values": int(sum(map(len, h))), "share": round(train.share().get(name, 0.0), 4)}
               for name, (t, h) in splits.items()}
    return train, held, summary


def stream_seed(args: argparse.Namespace) -> int:
    """Seed of the training windows (``--stream-seed``, else ``--seed``, which also draws the held-out split)."""
    return args.seed if args.stream_seed is None else args.stream_seed


def training_windows(args: argparse.Namespace, config, series: list[np.ndarray], windows: dict):
    """``(train windows, held-out windows, held-out mixture or None, summary)`` for the run's data options."""
    n_windows = args.steps * args.batch_size
    if args.corpus:
        if not args.data_dir:
            raise DataError("--corpus needs --data-dir (the pretraining data folder)")
        train_mix, held_mix, corpus_summary = corpus_mixtures(args, series)
        train_ds = PretrainWindows([], n_windows, args.seq_len, config.patch_len, seed=stream_seed(args),
                                   mixture=train_mix, **windows)
        held_ds = PretrainWindows([], 512, args.seq_len, config.patch_len, seed=args.seed + 1,
                                  mixture=held_mix, **windows)
        summary = {"real_series": sum(v["series"] for k, v in corpus_summary.items() if k != "synthetic"),
                   "heldout_series": sum(len(h) for h in held_mix.groups.values()), "corpus": corpus_summary}
        return train_ds, held_ds, held_mix, summary
    n_real, real = 0, []
    if args.data_dir:
        real = load_pretraining_series(args.data_dir)
        n_real = len(real)
        if not args.real_share:
            series, real = series + real, []
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(series))
    n_held = max(1, len(series) // 20)
    heldout = [series[i] for i in order[:n_held]]
    train = [series[i] for i in order[n_held:]]
    real_held = real[: max(1, len(real) // 20)] if real else []
    real_train = real[len(real_held):]
    train_ds = PretrainWindows(train, n_windows, args.seq_len, config.patch_len, seed=stream_seed(args),
                               real=real_train, real_share=args.real_share, **windows)
    held_ds = PretrainWindows(heldout, 512, args.seq_len, config.patch_len, seed=args.seed + 1,
                              real=real_held, real_share=args.real_share, **windows)
    return train_ds, held_ds, None, {"real_series": n_real, "heldout_series": n_held + len(real_held)}


def placement(args: argparse.Namespace) -> tuple[str, str]:
    """``(accelerator, precision)``: bf16 mixed precision on GPUs and on CPUs that multiply
    bf16 natively (a third faster per step on an AMX CPU), unless ``--precision`` says otherwise."""
    from trace_forecast.engine.devices import resolve_accelerator

    accelerator, precision = resolve_accelerator(args.device)
    if accelerator == "cpu" and native_bf16():
        precision = "bf16-mixed"
    return accelerator, args.precision or precision


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.cooldown and sum(args.cooldown) > args.steps:
        raise SystemExit("--steps sizes the window stream and must reach the cool-down's end (START + STEPS)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    pl.seed_everything(args.seed, verbose=False)
    series = synthetic_series(args)
    config = build_config(args.d_model, args.layers, args.d_ff, args.heads, args.seq_len)
    if args.init:
        from trace_forecast.backbone import load_backbone

        backbone = load_backbone(args.init).train()
        config = backbone.config
    else:
        backbone = MomentBackbone(config)
    made_from = {"source": str(args.init), **config.extra.get("trace_forecast", {})} if args.init else None
    ratio = args.mask_ratio[0] if len(args.mask_ratio) == 1 else tuple(args.mask_ratio[:2])
    windows = dict(tail_share=args.tail_share, max_tail_patches=args.max_tail_patches, mask_ratio=ratio)
    train_ds, held_ds, held_mix, data_summary = training_windows(args, config, series, windows)

    campaign = Path(args.campaign) if args.campaign else None
    checkpoint = campaign / CHECKPOINT if campaign else out / "checkpoints" / "last.ckpt"
    resume = checkpoint.is_file() and (campaign is not None or args.resume)
    start_window = stream_position(checkpoint) if resume else 0
    stream = WindowStream(train_ds, args.batch_size, start=start_window, stop=len(train_ds))

    budget_s = args.time_budget * 60 if args.time_budget else None
    module = PretrainModule(backbone, args.lr, args.steps, args.visible_weight, budget_s,
                            schedule=args.schedule, warmup_steps=args.warmup_steps,
                            cooldown=tuple(args.cooldown) if args.cooldown else None, compile_objective=args.compile)
    accelerator, precision = placement(args)
    torch.set_float32_matmul_precision("high")
    leg_info = {"argv": list(sys.argv[1:] if argv is None else argv)}
    callbacks = [PeriodicCheckpoint(checkpoint, args.checkpoint_every, campaign, leg_info, args.max_minutes)]
    if args.ema:
        callbacks.append(EMAWeightAveraging(decay=args.ema))
    trainer = pl.Trainer(
        max_steps=args.stop_after or (sum(args.cooldown) if args.cooldown else args.steps), accelerator=accelerator, devices=1, precision=precision,
        max_time={"seconds": budget_s} if budget_s else None,
        logger=CSVLogger(out, name="logs", version=f"leg{len(read_legs(campaign)) + 1}" if campaign else None),
        callbacks=callbacks, gradient_clip_val=1.0,
        val_check_interval=min(args.checkpoint_every, args.steps), check_val_every_n_epoch=None,
        limit_val_batches=8, num_sanity_val_steps=0, log_every_n_steps=25, enable_model_summary=False,
        enable_checkpointing=False, enable_progress_bar=sys.stdout.isatty(),
    )
    start = time.perf_counter()
    loader = dict(num_workers=args.workers, persistent_workers=args.workers > 0, pin_memory=accelerator == "gpu")
    trainer.fit(
        module,
        DataLoader(stream, batch_size=args.batch_size, **loader),
        DataLoader(held_ds, batch_size=args.batch_size, **loader),
        ckpt_path=str(checkpoint) if resume else None,
    )
    wall = time.perf_counter() - start
    backbone.eval()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    # What made these weights (not what made the weights it started from: those go under "from").
    backbone.config.extra["trace_forecast"] = {
        "pretrained_by": "trace_forecast.pretrain", "steps": int(trainer.global_step),
        "windows": int(module.windows_seen), **({"campaign": str(campaign)} if campaign else {}),
        **({"from": made_from} if made_from else {}),
    }
    save_backbone(backbone, out, moment_compatible=not args.compact)
    summary = {
        "steps": int(trainer.global_step), "batch_size": args.batch_size, "wall_seconds_this_run": round(wall, 1),
        "synthetic_series": args.synthetic, "windows_seen": int(module.windows_seen),
        "parameters": sum(p.numel() for p in backbone.parameters()), "metrics": metrics,
        "hardware": f"{accelerator} ({torch.cuda.get_device_name(0) if accelerator == 'gpu' else 'cpu'}), "
                    f"{precision}, torch threads {torch.get_num_threads()}",
        "args": vars(args), **data_summary,
    }
    if held_mix is not None:
        summary["heldout_loss_by_source"] = heldout_loss_by_source(backbone, held_mix, windows, args.seq_len)
        forecasting = {}
        if campaign:  # only a campaign leg keeps a record
            check = forecast_check(backbone, held_mix, args.seq_len)
            short = forecast_check(backbone, held_mix, args.seq_len, short=True)
            forecasting = {"heldout_forecast_loss": check["mean_over_real_sources"],
                           "heldout_forecast_loss_by_source": check["by_source"],
                           "heldout_short_forecast_loss": short["mean_over_real_sources"],
                           "heldout_short_forecast_loss_by_source": short["by_source"]}
        callbacks[0].record(trainer, module, "finished", heldout_loss_by_source=summary["heldout_loss_by_source"],
                            **forecasting)
    (out / "pretrain_summary.json").write_text(json.dumps(summary, indent=2))
    if not args.quiet:
        print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
