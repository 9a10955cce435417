"""Anomaly detection: the three UCR series and NAB.

UCR: fit on the normal prefix ``[0, TRAINEND)``, score the whole series, report the UCR
hit (top-scored point after the prefix within 100 steps of the labelled anomaly) and the
rank of the best anomalous point. NAB: fit on the first 30 % of each series (NAB's
probationary period is 15 %; 30 % gives fittable scorers enough windows), score the whole
series against ``combined_windows.json``; best F1 with and without point adjustment,
VUS-ROC / VUS-PR (buffers 0..100), AUC-ROC and AUC-PR. Every NAB series with anomalies
(52) unless a profile sets ``nab_per_category`` (then the first series, sorted by name,
of every category).

Methods: the default ``TraceAnomalyDetector`` (TRACE: Gated DSIC, masked-reconstruction
fine-tuning, block-masked score), the same with a longer fine-tune (4,096 windows x 2
epochs at learning rate 1e-3) and zero-shot (``adapter="none"``), on the embedded backbone; peers: PyOD ``IForest`` on sliding windows, Darts
``KMeansScorer``, sktime's ``MomentFMAnomalyDetector`` (NAB, full profile: it scores about
400 points/s), and two detectors that cost
nothing: the z-scored absolute first difference and a rolling-window z-score.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from benchmarks.harness import PeakMemory, Profile, main, require, suite_runner, timed
from trace_forecast.datasets import shared_data_dir
from trace_forecast.metrics import best_f1, ucr_hit, vus

CONTEXT, WINDOW = 512, 128
ROLLING_WINDOW = 64
NAB_FIT_SHARE = 0.3
VUS_BUFFER = 100


# The three UCR series of this benchmark's protocol. ``../shared/data/anomaly/UCR`` now holds 81;
# ``benchmarks.anomaly_suite`` scores all of them with a tuning/held-out split.
PROTOCOL_UCR = ("001", "002", "198")


def ucr_series(numbers: tuple[str, ...] | None = PROTOCOL_UCR) -> list[dict]:
    """The UCR series numbered ``numbers`` (``None``: every series in the folder)."""
    folder = require(shared_data_dir() / "anomaly" / "UCR")
    out = []
    for path in sorted(folder.glob("*_UCR_Anomaly_*")):
        m = re.match(r"(\d+)_UCR_Anomaly_(.+)_(\d+)_(\d+)_(\d+)\.(txt|out)$", path.name)
        if not m or (numbers is not None and m.group(1) not in numbers):
            continue
        if path.suffix == ".out":
            values = pd.read_csv(path, header=None).iloc[:, 0].to_numpy(np.float64)
        else:
            values = np.loadtxt(path, dtype=np.float64)
        out.append({"name": f"UCR {m.group(1)} {m.group(2)}", "values": values, "train_end": int(m.group(3)),
                    "begin": int(m.group(4)), "end": int(m.group(5))})
    return out


def nab_series(per_category: int | None) -> list[dict]:
    folder = shared_data_dir() / "anomaly" / "NAB"
    windows = json.loads(require(folder / "labels" / "combined_windows.json").read_text())
    by_category: dict[str, list[str]] = {}
    for key, wins in sorted(windows.items()):
        if wins:
            by_category.setdefault(key.split("/")[0], []).append(key)
    out = []
    for category, keys in sorted(by_category.items()):
        for key in keys[:per_category]:
            frame = pd.read_csv(folder / key, parse_dates=["timestamp"])
            labels = np.zeros(len(frame))
            for start, end in windows[key]:
                labels[(frame["timestamp"] >= pd.Timestamp(start)) & (frame["timestamp"] <= pd.Timestamp(end))] = 1
            out.append({"name": key, "values": frame["value"].to_numpy(np.float64), "labels": labels,
                        "train_end": int(len(frame) * NAB_FIT_SHARE)})
    return out


# ---------------------------------------------------------------------- scorers
def _window_to_points(window_scores: np.ndarray, n: int, w: int) -> np.ndarray:
    """Point score = mean score of the windows (start ``j``, length ``w``) covering it."""
    csum = np.concatenate([[0.0], np.cumsum(window_scores)])
    t = np.arange(n)
    lo = np.clip(t - w + 1, 0, len(window_scores))
    hi = np.clip(t + 1, 0, len(window_scores))
    count = np.maximum(hi - lo, 1)
    return (csum[hi] - csum[lo]) / count


def _standardise(values: np.ndarray, train_end: int) -> np.ndarray:
    """Z-scores with the statistics of the training prefix."""
    return (values - values[:train_end].mean()) / (values[:train_end].std() + 1e-8)


def _windows(values: np.ndarray, w: int) -> np.ndarray:
    return np.lib.stride_tricks.sliding_window_view(values, w)


LONGER_FINE_TUNE = {"max_windows": 4096, "max_epochs": 2, "learning_rate": 1e-3}


def score_trace(values, train_end, adapter: str, profile: Profile, seed: int, **settings):
    from trace_forecast import TraceAnomalyDetector

    detector = TraceAnomalyDetector(adapter=adapter, random_state=seed, **settings)  # the rest at its defaults
    train = pd.DataFrame({"x": values[:train_end]})
    with PeakMemory() as mem, timed() as fit_time:
        detector.fit(train)
    with timed() as score_time:
        scores = detector.transform_scores(pd.DataFrame({"x": values}))["scores"].to_numpy()
    params = int(detector.get_fitted_params()["total_trainable"]) if adapter != "none" else 0
    return scores, {"trainable_parameters": params, "fit_seconds": fit_time(),
                    "score_points_per_s": len(values) / score_time(), "peak_rss_mb": mem.peak_rss / 2**20}


def _free(scores: np.ndarray, seconds: float, n: int) -> tuple[np.ndarray, dict]:
    return scores, {"trainable_parameters": 0, "fit_seconds": 0.0, "score_points_per_s": n / max(seconds, 1e-9),
                    "peak_rss_mb": 0.0}


def score_first_difference(values, train_end, profile: Profile, seed: int):
    """|x_t - x_{t-1}|, z-scored with the training prefix's mean and deviation."""
    with timed() as score_time:
        d = np.abs(np.diff(values, prepend=values[0]))
        scores = (d - d[:train_end].mean()) / (d[:train_end].std() + 1e-12)
    return _free(scores, score_time(), len(values))


def score_rolling_z(values, train_end, profile: Profile, seed: int):
    """|x_t - mean| / sd over the preceding ``ROLLING_WINDOW`` steps."""
    with timed() as score_time:
        s = pd.Series(values)
        mean = s.rolling(ROLLING_WINDOW, min_periods=2).mean().shift(1)
        sd = s.rolling(ROLLING_WINDOW, min_periods=2).std().shift(1)
        scores = np.abs(((s - mean) / (sd + 1e-12)).fillna(0.0).to_numpy())
    return _free(scores, score_time(), len(values))


def score_iforest(values, train_end, profile: Profile, seed: int):
    from pyod.models.iforest import IForest

    z = _standardise(values, train_end)
    model = IForest(n_estimators=100, random_state=seed)
    with PeakMemory() as mem, timed() as fit_time:
        model.fit(_windows(z[:train_end], WINDOW)[::4])
    with timed() as score_time:
        scores = _window_to_points(model.decision_function(_windows(z, WINDOW)), len(values), WINDOW)
    return scores, {"trainable_parameters": 0, "fit_seconds": fit_time(),
                    "score_points_per_s": len(values) / score_time(), "peak_rss_mb": mem.peak_rss / 2**20}


def score_kmeans(values, train_end, profile: Profile, seed: int):
    from darts import TimeSeries
    from darts.ad import KMeansScorer

    z = _standardise(values, train_end).astype(np.float32)
    scorer = KMeansScorer(k=8, window=WINDOW, random_state=seed, n_init=3)
    with PeakMemory() as mem, timed() as fit_time:
        scorer.fit(TimeSeries.from_values(z[:train_end]))
    with timed() as score_time:
        out = scorer.score(TimeSeries.from_values(z))
    # Darts starts the point-wise score at the end of the first window: align by time index
    # and give the first points the first score.
    scores = np.full(len(z), out.values()[0, 0])
    scores[np.asarray(out.time_index, dtype=int)] = out.values()[:, 0]
    return scores, {"trainable_parameters": 0, "fit_seconds": fit_time(),
                    "score_points_per_s": len(values) / score_time(), "peak_rss_mb": mem.peak_rss / 2**20}


def score_sktime_moment(values, train_end, profile: Profile, seed: int):
    """sktime's MomentFMAnomalyDetector on our backbone exported in MOMENT layout. Its
    ``predict_scores`` reconstructs only the last 512 points of its input, so the series
    is scored in consecutive blocks of 512 (the last block left-aligned to the end)."""
    import tempfile
    from pathlib import Path

    import torch
    from sktime.detection.momentfm import MomentFMAnomalyDetector

    from benchmarks.long_horizon import export_for_sktime

    torch.manual_seed(seed)
    z = _standardise(values, train_end)
    with tempfile.TemporaryDirectory() as work:
        moment_dir, t5_dir = export_for_sktime(Path(work))
        detector = MomentFMAnomalyDetector(pretrained_model_name_or_path=moment_dir, transformer_backbone=t5_dir,
                                    epochs=profile.epochs, batch_size=32, device="cpu", train_val_split=0.0)
        with PeakMemory() as mem, timed() as fit_time:
            detector.fit(pd.DataFrame({"x": z[:train_end]}))
        scores = np.zeros(len(z))
        with timed() as score_time:
            starts = list(range(0, max(len(z) - CONTEXT, 0) + 1, CONTEXT))
            if starts[-1] + CONTEXT < len(z):
                starts.append(len(z) - CONTEXT)
            for start in starts:
                block = pd.DataFrame({"x": z[start : start + CONTEXT]})
                scores[start : start + len(block)] = detector.predict_scores(block).to_numpy().ravel()
        params = int(sum(p.numel() for p in detector.model.parameters() if p.requires_grad))
    return scores, {"trainable_parameters": params, "fit_seconds": fit_time(),
                    "score_points_per_s": len(values) / score_time(), "peak_rss_mb": mem.peak_rss / 2**20}


SCORERS = {
    "TRACE": lambda v, e, p, s: score_trace(v, e, "gated_dsic", p, s),
    "TRACE, longer fine-tune": lambda v, e, p, s: score_trace(v, e, "gated_dsic", p, s, **LONGER_FINE_TUNE),
    "zero-shot reconstruction": lambda v, e, p, s: score_trace(v, e, "none", p, s),
    "PyOD IForest (windows)": score_iforest,
    "Darts KMeansScorer": score_kmeans,
    "z-scored first difference": score_first_difference,
    f"rolling z-score ({ROLLING_WINDOW})": score_rolling_z,
}


def _save_example(series: dict, method: str, scores: np.ndarray, record, pool: int = 32) -> None:
    """Max-pooled scores of one UCR series for the anomaly-score figure (the record's summary)."""
    data = record.summary.setdefault("example", {})
    n = len(scores) // pool * pool
    data.update({
        "series": series["name"], "pool": pool, "train_end": series["train_end"], "begin": series["begin"],
        "end": series["end"], "values": series["values"][:n].reshape(-1, pool).mean(1).tolist(),
        method: scores[:n].reshape(-1, pool).max(1).tolist(),
    })


def suite(profile: Profile, record, methods: list[str] | None = None) -> None:
    """Every method on UCR and NAB; ``methods`` runs only those (sktime's
    MomentFMAnomalyDetector, NAB only, runs in the full profile or when named here)."""
    pick = (lambda table: {k: v for k, v in table.items() if k in methods}) if methods else (lambda table: table)
    # sktime's detector scores ~400 points/s (one 512-block call at a time).
    slow = {"sktime MomentFMAnomalyDetector": score_sktime_moment} if profile.name == "full" or methods else {}
    for series in ucr_series():
        values, train_end = series["values"], series["train_end"]
        for method, scorer in pick(SCORERS).items():
            for seed in profile.seeds if method != "zero-shot reconstruction" else profile.seeds[:1]:
                scores, extra = scorer(values, train_end, profile, seed)
                after = scores[train_end:]
                inside = after[series["begin"] - train_end : series["end"] - train_end + 1]
                rank = int(np.sum(after > inside.max())) + 1
                if series["name"].startswith("UCR 198") and seed == profile.seeds[0]:
                    _save_example(series, method, scores, record)
                record.add({"dataset": series["name"], "benchmark": "UCR", "method": method, "seed": seed,
                            "profile": profile.name,
                            "ucr_hit": bool(ucr_hit(after, series["begin"] - train_end, series["end"] - train_end)),
                            "top_point": int(np.argmax(after)) + train_end, "anomaly_rank": rank, **extra})
    for series in nab_series(profile.nab_per_category):
        values, labels, train_end = series["values"], series["labels"], series["train_end"]
        for method, scorer in pick({**SCORERS, **slow}).items():
            for seed in profile.seeds if method != "zero-shot reconstruction" else profile.seeds[:1]:
                scores, extra = scorer(values, train_end, profile, seed)
                vus_roc, vus_pr = vus(scores, labels, VUS_BUFFER)
                auc_roc, auc_pr = vus(scores, labels, 0, steps=1)
                record.add({"dataset": series["name"], "benchmark": "NAB", "method": method, "seed": seed,
                            "profile": profile.name, "f1": best_f1(scores, labels),
                            "f1_point_adjusted": best_f1(scores, labels, point_adjust=True),
                            "vus_roc": vus_roc, "vus_pr": vus_pr, "auc_roc": auc_roc, "auc_pr": auc_pr,
                            **extra})


KEY, options, result_name, run = suite_runner(__name__, suite)

if __name__ == "__main__":
    main(__name__)
