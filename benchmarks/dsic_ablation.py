"""Gated DSIC's value: selection rules and adapters at matched trainable parameters.

``python -m benchmarks.dsic_ablation [--seeds 0 1 2] [--datasets ETTh1 ILI M4]``
writes ``benchmarks/results/dsic_ablation.json`` a row at a time (an interrupted run resumes
where it stopped; ``--fresh`` starts over); ``benchmarks.report`` renders it.

Every variant trains the same embedded backbone with the same head (reconstruction head,
closed-form start) and the same recipe, in the regime where adapters move the result
(``TRAINING``: learning rate 1e-3, 4,096 windows x 2 epochs; at the fast defaults every
variant ties the head-only start to four decimals). Budgets are matched: Gated DSIC
keeps half of the 28 rank-2 modules, plain LoRA has rank 1 on all 28, AdaLoRA starts at
rank 2 on all 28 and prunes to an average rank of 1. The head-only row trains only the head.

Protocols: ETTh1 and ILI as ``benchmarks.long_horizon`` (H = 96 / 24, every
``TEST_STRIDE``-th ETTh1 test window), M4 Hourly as ``benchmarks.m4`` (OWA).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from benchmarks.harness import Record, channel_windows, main

TRAINING = {"learning_rate": 1e-3, "max_windows": 4096, "max_epochs": 2}
TEST_STRIDE = 8
VARIANTS: dict[str, dict] = {
    "Gated DSIC": {"adapter": "gated_dsic", "dsic_rule": "taylor2"},
    "random subset, same budget": {"adapter": "gated_dsic", "dsic_rule": "random"},
    "magnitude rule": {"adapter": "gated_dsic", "dsic_rule": "magnitude"},
    "LoRA rank 1, all modules": {"adapter": "lora", "lora_rank": 1},
    "AdaLoRA": {"adapter": "adalora", "lora_rank": 1},
    "head only": {"adapter": "none"},
}


def training_profile():
    """The quick profile with ``TRAINING``'s windows and epochs (learning rate: in the params)."""
    from benchmarks.harness import PROFILES

    return dataclasses.replace(PROFILES["quick"], max_windows=TRAINING["max_windows"], epochs=TRAINING["max_epochs"])


def long_horizon_case(name: str, horizon: int):
    from benchmarks.long_horizon import load_split, run_trace

    split = load_split(name)
    hist, fut = channel_windows(split.test, 512, horizon, TEST_STRIDE if name == "ETTh1" else 1)
    profile = training_profile()

    def run(params: dict, seed: int) -> dict:
        r = run_trace(split, horizon, None, {**params, "learning_rate": TRAINING["learning_rate"]}, profile, seed,
                      hist, fut)
        return {"metric": "MSE", "value": r["mse"], "fit_seconds": r["fit_seconds"],
                "trainable_parameters": r["trainable_parameters"]}

    return run


def m4_case():
    from benchmarks.m4 import load_m4_hourly, naive2, run_trace, scores

    histories, futures = load_m4_hourly()
    s_n2, m_n2 = scores(histories, futures, np.stack([naive2(h) for h in histories]))
    profile = training_profile()

    def run(params: dict, seed: int) -> dict:
        pred, info = run_trace({**params, "learning_rate": TRAINING["learning_rate"]}, profile, seed, histories)
        s, m = scores(histories, futures, pred)
        return {"metric": "OWA", "value": 0.5 * (s / s_n2 + m / m_n2), "fit_seconds": info["fit_seconds"],
                "trainable_parameters": info["trainable_parameters"]}

    return run


CASES = {"ETTh1": lambda: long_horizon_case("ETTh1", 96), "ILI": lambda: long_horizon_case("ILI", 24), "M4": m4_case}


KEY = ("dataset", "variant", "seed")


def options(parser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--datasets", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))


def run(args, record: Record) -> None:
    record.protocol.update(training=TRAINING, test_stride_etth1=TEST_STRIDE)
    for dataset in args.datasets:
        todo = [(v, s) for v in args.variants for s in args.seeds
                if not record.done({"dataset": dataset, "variant": v, "seed": s})]
        if not todo:
            continue
        fit = CASES[dataset]()
        for variant, seed in todo:
            record.add({"dataset": dataset, "variant": variant, "seed": seed, **fit(VARIANTS[variant], seed)})


if __name__ == "__main__":
    main(__name__)
