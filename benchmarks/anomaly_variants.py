"""Which anomaly score: mask scheme x error unit x smoothing, measured on NAB and UCR.

``python -m benchmarks.anomaly_variants`` scores every NAB series with anomalies (52) and
the three UCR series with the embedded backbone zero-shot (the scores' differences are
what is compared; fine-tuned vs zero-shot is in ``benchmarks/anomaly.py``) and writes
``results/anomaly_variants.json``, rendered by ``benchmarks.report``:

- mask schemes (:mod:`trace_forecast.tasks.scoring`): block, interleaved, forecast
  (tail), unmasked;
- error unit: the series' own units, or each window's RevIN units;
- window stride: 64 (the default, ``context_length // 8``), 32 or 128 (block masks; the
  forecast score uses 32, so that its 128 hidden steps cover each step 4 times);
- smoothing: none, a 32- or 128-step moving average, or the default of its time (a
  128-step maximum of the 32-step average, plus a hundredth of the average; now
  ``smoothing="max"``: the default became ``"multi-scale"``, chosen on the anomaly suite's
  tuning split, ``benchmarks/anomaly_suite.py``).

Every variant is standardised as the detectors do, before smoothing: robust z-scores
against the errors of the training prefix at the same position class (start, middle,
end of the series); the last row drops the position classes (one scale for all steps).
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.anomaly import nab_series, ucr_series
from benchmarks.harness import Record, main
from trace_forecast.backbone import shared_backbone
from trace_forecast.metrics import best_f1, ucr_hit, vus
from trace_forecast.network import NetworkSpec, build_network
from trace_forecast.tasks.scoring import SCORES, ErrorScale, moving_average, smooth_errors, step_errors

# (score, error unit, window stride); the default first
SCORE_VARIANTS = [("block", "series", 64), ("block", "series", 32), ("block", "series", 128), ("block", "window", 64),
                  ("interleaved", "series", 64), ("forecast", "series", 32), ("unmasked", "window", 64)]
SMOOTHING = {
    "none": lambda e: e,
    "mean 32": lambda e: moving_average(e, 32),
    "mean 128": lambda e: moving_average(e, 128),
    "max 128 of mean 32 (default)": lambda e: smooth_errors(e, 128),
}
CONTEXT = 512


def standardise(errors: np.ndarray, train_end: int, positions: bool = True) -> np.ndarray:
    """The detectors' robust standardisation against the training prefix's errors."""
    e = errors[:, None]
    scale = ErrorScale.fit([e[:train_end]], CONTEXT if positions else 0)
    return scale.standardise(e)[:, 0]


def _ucr(scores: np.ndarray, s: dict) -> tuple[int, bool]:
    """(rank of the best anomalous point, UCR hit) after the training prefix."""
    after = scores[s["train_end"]:]
    begin, end = s["begin"] - s["train_end"], s["end"] - s["train_end"]
    return int(np.sum(after > after[begin : end + 1].max())) + 1, bool(ucr_hit(after, begin, end))


def run(args, record: Record) -> None:
    network = build_network(shared_backbone(None), NetworkSpec(task="reconstruction", context_length=512,
                                                               adapter="none"), seed=0)
    nab, ucr = nab_series(None), ucr_series()
    for score, unit, stride in SCORE_VARIANTS:
        scheme, n_masks = SCORES[score]
        start = time.perf_counter()
        errors = {s["name"]: step_errors(network, s["values"].astype(np.float32), scheme, n_masks,
                                         stride, unit) for s in nab + ucr}
        seconds = time.perf_counter() - start
        stride_only = score == "block" and stride != 64          # the stride rows: default smoothing only
        variants = {k: v for k, v in SMOOTHING.items() if not stride_only or "(default)" in k}
        if (score, unit, stride) == SCORE_VARIANTS[0]:
            variants["default, one scale for all positions"] = SMOOTHING["max 128 of mean 32 (default)"]
        for smoothing, smooth in variants.items():
            positions = not smoothing.startswith("default, one scale")
            auc, vus_roc, f1 = [], [], []
            for s in nab:
                scores = smooth(standardise(errors[s["name"]], s["train_end"], positions))
                f1.append(best_f1(scores, s["labels"]))
                vus_roc.append(vus(scores, s["labels"], 100)[0])
                auc.append(vus(scores, s["labels"], 0, steps=1)[0])
            ucr_results = [_ucr(smooth(standardise(errors[s["name"]], s["train_end"], positions)), s) for s in ucr]
            record.add({"score": score, "unit": unit, "stride": stride, "smoothing": smoothing, "nab_series": len(nab),
                        "nab_f1": float(np.mean(f1)), "nab_vus_roc": float(np.mean(vus_roc)),
                        "nab_auc_roc": float(np.mean(auc)), "nab_auc_below_half": int(np.sum(np.array(auc) < 0.5)),
                        "ucr_ranks": [r for r, _ in ucr_results], "ucr_hits": sum(h for _, h in ucr_results), "score_seconds": seconds})


if __name__ == "__main__":
    main(__name__)
