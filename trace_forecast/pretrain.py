"""Pretrain a MOMENT-layout backbone: ``python -m trace_forecast.pretrain --out DIR``.

Objective: MOMENT's masked-patch reconstruction (30 % of the observed patches hidden)
and, as our addition, a share of windows whose *last* 1-12 patches are hidden, so the
reconstruction head learns to extend a series (what TRACE's reconstruction-based
forecasting head builds on). Data: the synthetic generator plus, when given, the M4
weekly files of ``../shared/data/pretraining`` (never the evaluation data sets).
Training runs on Lightning (CPU or GPU), logs loss curves to ``DIR/logs``,
checkpoints to ``DIR/checkpoints`` (``--resume`` continues from the last one) and
writes ``config.json`` + ``model.safetensors`` into ``DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger
from torch.utils.data import DataLoader, Dataset

from trace_forecast.backbone import MomentBackbone, MomentConfig, save_backbone, t5_config_dict
from trace_forecast.data.corpus import SOURCE_NAMES, default_weights, load_corpus, load_m4_file, split_heldout
from trace_forecast.data.mixture import SourceMixture
from trace_forecast.data.synthetic import generate_corpus, generate_corpus_parallel
from trace_forecast.engine.windows import left_pad
from trace_forecast.errors import DataError
from trace_forecast.losses import masked_reconstruction_loss
from trace_forecast.network import random_patch_mask


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


class PretrainWindows(Dataset):
    """Random windows with their pretraining masks; index-seeded, so reproducible.

    Series come from ``mixture`` (a :class:`SourceMixture` of weighted sources) when given,
    else from ``series`` and ``real``. A share ``tail_share`` of windows hides its last 1 to ``max_tail_patches`` patches
    (extending a series, what the forecasting head reads); the others hide a ratio of
    their observed patches drawn from ``mask_ratio`` (a number, or a ``(low, high)``
    range). ``real`` series, if given, are drawn with probability ``real_share``.
    """

    def __init__(self, series: list[np.ndarray], n_windows: int, seq_len: int, patch_len: int,
                 mask_ratio: float | tuple[float, float] = 0.3, tail_share: float = 0.3, seed: int = 0,
                 max_tail_patches: int = 12, real: list[np.ndarray] | None = None,
                 real_share: float = 0.0, mixture: SourceMixture | None = None) -> None:
        self.series = series
        self.mixture = mixture
        self.n_windows = n_windows
        self.seq_len = seq_len
        self.patch_len = patch_len
        self.mask_ratio = mask_ratio
        self.tail_share = tail_share
        self.seed = seed
        self.max_tail_patches = max_tail_patches
        self.real = real or []
        self.real_share = real_share if self.real else 0.0

    def __len__(self) -> int:
        return self.n_windows

    def __getitem__(self, idx: int):
        rng = np.random.default_rng((self.seed, idx))
        if self.mixture is not None:
            s = self.mixture.draw(rng)[1]
        elif self.real_share > 0 and rng.random() < self.real_share:
            s = self.real[rng.integers(len(self.real))]
        else:
            s = self.series[rng.integers(len(self.series))]
        min_len = min(len(s), 8 * self.patch_len)
        end = int(rng.integers(min_len, len(s) + 1))
        full = min(end, self.seq_len)
        # Mostly full contexts (as MOMENT sees), sometimes short ones (left-padded).
        length = full if rng.random() < 0.7 else int(rng.integers(min(min_len, end), full + 1))
        x, input_mask = left_pad(s[end - length : end], self.seq_len)
        x_t, m_t = torch.from_numpy(x)[None, :], torch.from_numpy(input_mask)
        observed_patches = int(m_t.reshape(-1, self.patch_len).all(-1).sum())
        if rng.random() < self.tail_share and observed_patches >= 4:
            k = int(rng.integers(1, min(self.max_tail_patches, observed_patches // 2) + 1))
            mask = torch.ones(self.seq_len)
            mask[-k * self.patch_len :] = 0
        else:
            g = torch.Generator().manual_seed(int(rng.integers(2**31)))
            ratio = self.mask_ratio if np.isscalar(self.mask_ratio) else float(rng.uniform(*self.mask_ratio))
            mask = random_patch_mask(m_t[None], self.patch_len, ratio, g)[0]
        return x_t, m_t, mask


class TimeBudgetSchedule:
    """Learning-rate factor for a run bounded by wall time rather than steps: linear
    warm-up over ``warmup_steps``, then a cosine decay to 0 over the elapsed share of
    ``budget_s`` (so the rate anneals whatever the hardware's speed; the run itself is
    stopped by Lightning's ``max_time``)."""

    def __init__(self, budget_s: float, warmup_steps: int = 200) -> None:
        self.budget_s = budget_s
        self.warmup_steps = warmup_steps
        self.start: float | None = None

    def __call__(self, step: int) -> float:
        if self.start is None:
            self.start = time.monotonic()
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        done = min(1.0, (time.monotonic() - self.start) / self.budget_s)
        return max(0.5 * (1 + math.cos(math.pi * done)), 1e-3)


class PretrainModule(pl.LightningModule):
    """Lightning wrapper of the pretraining objective."""

    def __init__(self, backbone: MomentBackbone, learning_rate: float = 1e-3, total_steps: int = 1000,
                 visible_weight: float = 0.0, time_budget_s: float | None = None):
        super().__init__()
        self.backbone = backbone
        self.visible_weight = visible_weight
        self.learning_rate = learning_rate
        self.total_steps = total_steps
        self.time_budget_s = time_budget_s

    def training_step(self, batch, batch_idx):
        loss = masked_reconstruction_loss(self.backbone, *batch, visible_weight=self.visible_weight)
        self.log("train_loss", loss, on_step=True, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        loss = masked_reconstruction_loss(self.backbone, *batch)
        self.log("heldout_loss", loss, on_epoch=True, prog_bar=True)
        return loss

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=0.01)
        if self.time_budget_s:
            sched = torch.optim.lr_scheduler.LambdaLR(opt, TimeBudgetSchedule(self.time_budget_s))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=self.learning_rate, total_steps=self.total_steps,
                                                    pct_start=max(0.05, 3 / self.total_steps))
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}


def build_config(d_model: int, layers: int, d_ff: int, heads: int, seq_len: int = 512) -> MomentConfig:
    """A small MOMENT-layout architecture (vocab 2: T5's token table is never used)."""
    t5 = t5_config_dict(d_model, layers, d_ff, heads, d_kv=d_model // heads, vocab_size=2)
    t5["dropout_rate"] = 0.0
    return MomentConfig(d_model=d_model, t5_config=t5, seq_len=seq_len, dropout=0.0,
                        extra={"trace_forecast": {"pretrained_by": "trace_forecast.pretrain"}})


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
                   help="draw from every real source of --data-dir (trace_forecast.data.corpus), weighted, "
                        "with a held-out slice of each; without it only the M4 weekly files are read")
    p.add_argument("--sources", nargs="+", default=None, choices=SOURCE_NAMES, help="with --corpus: only these")
    p.add_argument("--synthetic-weight", type=float, default=0.2, help="with --corpus: share of synthetic windows")
    p.add_argument("--source-weight", nargs="+", default=None, metavar="NAME=W",
                   help="with --corpus: override a source's mixing weight")
    p.add_argument("--coarse-share", type=float, default=0.0,
                   help="share of windows drawn from a series averaged over 2-24 steps (several resolutions)")
    p.add_argument("--workers", type=int, default=0, help="data-loader and corpus-generation processes")
    p.add_argument("--time-budget", type=float, default=None,
                   help="minutes of training: stop then, with the learning rate annealed over that time "
                        "(replaces --steps' schedule; --steps then only sizes the window stream)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--visible-weight", type=float, default=0.0,
                   help="weight of the visible patches in the loss (0 = MOMENT's hidden-only objective)")
    p.add_argument("--init", default=None, help="start from this checkpoint folder (a second pretraining stage)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default=None, help="Lightning precision (default: bf16-mixed on GPUs, else 32-true)")
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
    train = SourceMixture({n: t for n, (t, _) in splits.items()}, weights, coarse_share=args.coarse_share)
    held = SourceMixture({n: h for n, (_, h) in splits.items()}, weights, coarse_share=args.coarse_share)
    summary = {name: {"series": len(corpus.get(name, synthetic)), "train_values": int(sum(map(len, t))),
                      "heldout_values": int(sum(map(len, h))), "share": round(train.share().get(name, 0.0), 4)}
               for name, (t, h) in splits.items()}
    return train, held, summary


def heldout_loss_by_source(backbone: MomentBackbone, held: SourceMixture, windows: dict, seq_len: int,
                           n_windows: int = 256, seed: int = 12345, batch_size: int = 128) -> dict[str, float]:
    """Masked-reconstruction loss (hidden steps, RevIN space) on ``n_windows`` fixed windows of
    each source's held-out series, with the training mix of masks at full resolution; the same
    windows for any backbone, so versions compare."""
    out = {}
    backbone.eval()
    for name, series in held.groups.items():
        ds = PretrainWindows(series, n_windows, seq_len, backbone.patch_len, seed=seed, **windows)
        losses, counts = [], []
        with torch.no_grad():
            for x, m, mask in DataLoader(ds, batch_size=batch_size):
                losses.append(float(masked_reconstruction_loss(backbone, x, m, mask)) * len(x))
                counts.append(len(x))
        out[name] = round(sum(losses) / sum(counts), 4)
    return out


def main(argv=None) -> dict:
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pl.seed_everything(args.seed, verbose=False)
    series = synthetic_series(args)
    config = build_config(args.d_model, args.layers, args.d_ff, args.heads, args.seq_len)
    if args.init:
        from trace_forecast.backbone import load_backbone

        backbone = load_backbone(args.init).train()
        config = backbone.config
    else:
        backbone = MomentBackbone(config)
    ratio = args.mask_ratio[0] if len(args.mask_ratio) == 1 else tuple(args.mask_ratio[:2])
    windows = dict(tail_share=args.tail_share, max_tail_patches=args.max_tail_patches, mask_ratio=ratio)
    n_windows = args.steps * args.batch_size
    corpus_summary, held_mix = None, None
    if args.corpus:
        if not args.data_dir:
            raise DataError("--corpus needs --data-dir (the pretraining data folder)")
        train_mix, held_mix, corpus_summary = corpus_mixtures(args, series)
        n_real = sum(v["series"] for k, v in corpus_summary.items() if k != "synthetic")
        n_held = sum(len(h) for h in held_mix.groups.values())
        train_ds = PretrainWindows([], n_windows, args.seq_len, config.patch_len, seed=args.seed,
                                   mixture=train_mix, **windows)
        held_ds = PretrainWindows([], 512, args.seq_len, config.patch_len, seed=args.seed + 1,
                                  mixture=held_mix, **windows)
    else:
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
        n_held += len(real_held)
        real_train = real[len(real_held):]
        train_ds = PretrainWindows(train, n_windows, args.seq_len, config.patch_len, seed=args.seed,
                                   real=real_train, real_share=args.real_share, **windows)
        held_ds = PretrainWindows(heldout, 512, args.seq_len, config.patch_len, seed=args.seed + 1,
                                  real=real_held, real_share=args.real_share, **windows)
    budget_s = args.time_budget * 60 if args.time_budget else None
    module = PretrainModule(backbone, args.lr, args.steps, args.visible_weight, budget_s)
    from trace_forecast.engine.trainer import resolve_accelerator

    accelerator, precision = resolve_accelerator(args.device)
    precision = args.precision or precision
    torch.set_float32_matmul_precision("high")
    ckpt = ModelCheckpoint(dirpath=out / "checkpoints", save_last=True, every_n_train_steps=args.checkpoint_every)
    trainer = pl.Trainer(
        max_steps=args.stop_after or args.steps, accelerator=accelerator, devices=1, precision=precision,
        max_time={"seconds": budget_s} if budget_s else None,
        logger=CSVLogger(out, name="logs", version=0), callbacks=[ckpt], gradient_clip_val=1.0,
        val_check_interval=min(args.checkpoint_every, args.steps), check_val_every_n_epoch=None,
        limit_val_batches=8, num_sanity_val_steps=0, log_every_n_steps=25, enable_model_summary=False,
        enable_progress_bar=sys.stdout.isatty(),
    )
    start = time.perf_counter()
    loader = dict(num_workers=args.workers, persistent_workers=args.workers > 0,
                  pin_memory=accelerator == "gpu")
    trainer.fit(
        module,
        DataLoader(train_ds, batch_size=args.batch_size, shuffle=False, **loader),
        DataLoader(held_ds, batch_size=args.batch_size, **loader),
        ckpt_path="last" if args.resume and (out / "checkpoints" / "last.ckpt").is_file() else None,
    )
    wall = time.perf_counter() - start
    backbone.eval()
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
    save_backbone(backbone, out, moment_compatible=not args.compact)
    summary = {
        "steps": int(trainer.global_step), "batch_size": args.batch_size, "wall_seconds_this_run": round(wall, 1),
        "synthetic_series": args.synthetic, "real_series": n_real, "heldout_series": n_held,
        "windows_seen": int(trainer.global_step) * args.batch_size,
        "parameters": sum(p.numel() for p in backbone.parameters()), "metrics": metrics,
        "hardware": f"{accelerator} ({torch.cuda.get_device_name(0) if accelerator == 'gpu' else 'cpu'}), "
                    f"{precision}, torch threads {torch.get_num_threads()}",
        "args": vars(args),
    }
    if held_mix is not None:
        summary["corpus"] = corpus_summary
        summary["heldout_loss_by_source"] = heldout_loss_by_source(backbone, held_mix, windows, args.seq_len)
    (out / "pretrain_summary.json").write_text(json.dumps(summary, indent=2))
    if not args.quiet:
        print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    main()
