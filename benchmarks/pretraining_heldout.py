"""Held-out pretraining loss per source, for several backbones on the same windows.

The held-out slices of the real sources are the ones ``python -m trace_forecast.pretrain
--corpus`` keeps out (:func:`trace_forecast.pretraining.corpus.split_heldout`, seed 0). The
synthetic group is 1,000 fresh series from the generator with a seed no pretraining run
used (10 % intermittent, as in pretraining). Every backbone
is scored on the same 256 windows per source with the pretraining mix of masks (half of
the windows hide their last 1-32 patches, the others 15-50 % of their patches), so the
figures compare versions:

``python -m benchmarks.pretraining_heldout --backbone embedded=None v3=runs/v3``

A backbone may also be a campaign checkpoint (``leg6=leg6.ckpt``: its exported weights, the
moving average). ``--forecast`` runs the held-out forecasting check instead of the pretraining
mix (:func:`trace_forecast.pretraining.module.forecast_check`: every window hides only its last
1 to 12 patches, the zero-shot forecast's task on pretraining-only data; each campaign leg
records it too; ``results/pretraining_heldout_forecast.json``; ``docs/model_card.md`` compares it
with the zero-shot benchmarks). ``--forecast --short`` runs it on short contexts only (64 to 256
observed steps: ``SHORT_FORECAST_CHECK_WINDOWS``; ``results/pretraining_heldout_short_forecast.json``).
"""

from __future__ import annotations

from benchmarks.harness import Record, main
from trace_forecast.backbone import load_backbone
from trace_forecast.datasets import shared_data_dir
from trace_forecast.pretraining.campaign import campaign_backbone
from trace_forecast.pretraining.corpus import load_corpus, split_heldout
from trace_forecast.pretraining.mixture import SourceMixture
from trace_forecast.pretraining.module import forecast_check, heldout_loss_by_source
from trace_forecast.pretraining.synthetic import generate_corpus

WINDOWS = dict(tail_share=0.5, max_tail_patches=32, mask_ratio=(0.15, 0.5))


SYNTHETIC_SEED = 1000


def heldout_mixture(synthetic: int = 1000, seed: int = 0) -> SourceMixture:
    """The held-out slices of every source, as the pretraining run kept them out."""
    corpus = load_corpus(shared_data_dir() / "pretraining")
    groups = {name: split_heldout(series, seed=seed)[1] for name, series in corpus.items()}
    # Synthetic series no backbone has seen: a seed no pretraining run used (v2's corpus,
    # 50,000 series from seed 0, begins with v3's 20,000, so a slice of those is not held out).
    groups["synthetic"] = generate_corpus(synthetic, 128, 1024, seed=SYNTHETIC_SEED, intermittent_share=0.1)
    return SourceMixture(groups, dict.fromkeys(groups, 1.0))


KEY = ("backbone", "source")


def options(parser) -> None:
    parser.add_argument("--backbone", nargs="+", default=["embedded=None"],
                        help="NAME=CHECKPOINT pairs (None: the embedded backbone)")
    parser.add_argument("--windows", type=int, default=256, help="windows per source")
    parser.add_argument("--forecast", action="store_true",
                        help="the held-out forecasting check (windows hide only their last 1-12 patches)")
    parser.add_argument("--short", action="store_true", help="with --forecast: short contexts only (64-256 steps)")


def result_name(args) -> str:
    """``results/pretraining_heldout.json``, or ``..._forecast.json`` for the forecasting check."""
    if args.forecast:
        return "pretraining_heldout_short_forecast" if args.short else "pretraining_heldout_forecast"
    return "pretraining_heldout"


def backbone_from(path: str):
    """The embedded backbone (``None``), a backbone folder, or a campaign checkpoint's weights."""
    if path.endswith(".ckpt"):
        return campaign_backbone(path)
    return load_backbone(None if path == "None" else path)


def run(args, record: Record) -> None:
    held = heldout_mixture()
    for item in args.backbone:
        name, path = item.split("=", 1)
        backbone = backbone_from(path)
        if args.forecast:
            check = forecast_check(backbone, held, 512, n_windows=args.windows, short=args.short)
            losses = check["by_source"]
            record.summary.setdefault("mean_over_real_sources", {})[name] = check["mean_over_real_sources"]
        else:
            losses = heldout_loss_by_source(backbone, held, WINDOWS, 512, n_windows=args.windows)
        for source, loss in losses.items():
            record.add({"backbone": name, "source": source, "loss": loss}, quiet=True)
        print(name, losses, flush=True)


if __name__ == "__main__":
    main(__name__)
