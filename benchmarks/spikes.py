"""Point spikes: the default detector against the z-scored first difference on synthetic series.

``python -m benchmarks.spikes`` writes ``results/spikes.json``. Each series (6,000 steps, a
fixed seed) is one of five shapes -- a noisy sine, two seasonalities with noise, AR(1), a
random walk, an ECG-like beat train -- with 10 single-step spikes after the fitting prefix
(the first 30 %, as in the anomaly suite's WSD protocol), each of ``magnitude`` times the
prefix's first-difference standard deviation, up or down. Every detector is fitted on the
prefix and scores the rest; AUC-ROC, VUS-PR and best F1 as the anomaly suite scores WSD
(``benchmarks.anomaly_suite.metrics``), and how many steps the ``threshold="auto"`` labels
flag and how many spikes they catch. The arms: ``TraceAnomalyDetector()`` at its defaults,
the same with ``score="interleaved"`` (every fourth patch hidden, so a step is
reconstructed from both sides), the same with the point-spike component
(``spikes="auto"``, :mod:`trace_forecast.tasks.spikes`), and the z-scored absolute first
difference.

``--part suite`` scores the anomaly suite's series that ``spikes="auto"`` reaches (their
training prefixes' first differences Gaussian-like; the others score bit-identically with
it) by the suite's protocol (``benchmarks.anomaly_suite``): ``TraceAnomalyDetector()`` and
``TraceAnomalyDetector(spikes="auto")`` fitted on each series' prefix, their scores' metrics
and what their ``threshold="auto"`` labels caught (``anomaly_suite.threshold_outcome``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.anomaly_suite import BASELINES, metrics
from benchmarks.harness import Record, main

SHAPES = ("sine", "two seasonalities", "AR(1)", "random walk", "ECG-like")
MAGNITUDES = (3.0, 6.0)
LENGTH, PREFIX, SPIKES = 6000, 0.3, 10
KEY = ("part", "series", "magnitude", "method")


def shape(name: str, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(LENGTH)
    if name == "sine":
        return np.sin(2 * np.pi * t / 100) + 0.1 * rng.standard_normal(LENGTH)
    if name == "two seasonalities":
        return 10 + 3 * np.sin(2 * np.pi * t / 288) + np.sin(2 * np.pi * t / 24) + 0.5 * rng.standard_normal(LENGTH)
    if name == "AR(1)":
        noise, x = rng.standard_normal(LENGTH), np.zeros(LENGTH)
        for i in range(1, LENGTH):
            x[i] = 0.9 * x[i - 1] + noise[i]
        return x
    if name == "random walk":
        return 0.1 * np.cumsum(rng.standard_normal(LENGTH))
    beat = 5 * np.exp(-(((np.arange(80) - 40) / 3.0) ** 2)) - np.exp(-(((np.arange(80) - 30) / 6.0) ** 2))
    return np.tile(beat, LENGTH // 80 + 1)[:LENGTH] + 0.05 * rng.standard_normal(LENGTH)


def spiked(name: str, magnitude: float, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """``(values, labels, prefix)`` of one series with its spikes."""
    rng = np.random.default_rng(seed)
    values, prefix = shape(name, rng), int(PREFIX * LENGTH)
    labels = np.zeros(LENGTH, int)
    where = rng.choice(np.arange(prefix + 200, LENGTH - 10), SPIKES, replace=False)
    values[where] += magnitude * np.std(np.diff(values[:prefix])) * rng.choice([-1.0, 1.0], SPIKES)
    labels[where] = 1
    return values, labels, prefix


def scores(method: str, values: np.ndarray, prefix: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The method's scores of every step and, for TRACE, its ``threshold="auto"`` labels."""
    if method in BASELINES:  # the anomaly suite's own baseline
        return BASELINES[method]({"values": values, "train_end": prefix}), None
    from trace_forecast import TraceAnomalyDetector

    detector = TraceAnomalyDetector(random_state=0, **METHODS[method]).fit(pd.DataFrame({"v": values[:prefix]}))
    frame = pd.DataFrame({"v": values})
    return (np.asarray(detector.transform_scores(frame), float).ravel(),
            np.asarray(detector.transform(frame), bool).ravel())


def gated_suite():
    """Each anomaly-suite series, its training prefix, and whether ``spikes="auto"`` scores it
    (the prefix's first differences close to Gaussian; data only, nothing is fitted)."""
    from benchmarks.anomaly_suite import load_suite
    from trace_forecast.tasks.spikes import gaussian_differences

    for series in load_suite("all"):
        train = np.asarray(series["values"][: series["train_end"]], float)
        yield series, train, bool(gaussian_differences([train[:, None]])[0])


def suite_gate() -> dict:
    """Per anomaly-suite benchmark: its series, and how many of them ``spikes="auto"`` scores."""
    out: dict = {}
    for series, _, joins in gated_suite():
        entry = out.setdefault(series["benchmark"], {"series": 0, "auto_joins": 0})
        entry["series"] += 1
        entry["auto_joins"] += int(joins)
    return out


METHODS = {"TRACE (default)": {}, 'TRACE (score="interleaved")': {"score": "interleaved"},
           'TRACE (spikes="auto")': {"spikes": "auto"}, "z-scored first difference": None}


def options(parser) -> None:
    parser.add_argument("--part", choices=("synthetic", "suite"), default="synthetic")


def suite_part(record: Record) -> None:
    from benchmarks.anomaly_suite import split_of, threshold_outcome

    for series, _, joins in gated_suite():
        if not joins:
            continue
        values = np.asarray(series["values"], float)
        for method in METHODS_SUITE:
            row = {"part": "suite", "series": series["name"], "magnitude": None, "method": method}
            if record.done(row):
                continue
            score, flags = scores(method, values, series["train_end"])
            record.add({**row, "benchmark": series["benchmark"], "split": split_of(series["family"]),
                        **metrics(series, score), **threshold_outcome(series, flags)})
    record.summary["whole_suite"] = whole_suite([r for r in record.rows if r["part"] == "suite"])


def whole_suite(rows: list[dict]) -> dict:
    """The anomaly suite's mean metrics per split and benchmark with and without the component:
    its committed ``TRACE [package default]`` rows, with the gated series' rows from ``rows``
    (every other series scores bit-identically), and what the labels did on the gated series."""
    from benchmarks.harness import RESULTS, load

    arms = {(r["series"], r["method"]): r for r in rows}
    groups: dict[str, list[dict]] = {}
    for r in load(RESULTS / "anomaly_suite.json")["rows"]:
        if r["method"] == "TRACE [package default]":
            groups.setdefault(f"{r['split']} {r['benchmark']}", []).append(r)
    out: dict = {}
    for name, part in groups.items():
        entry = out[name] = {"series": len(part), "gated": sum((r["dataset"], METHODS_SUITE[0]) in arms for r in part)}
        for method in METHODS_SUITE:
            picked = [arms.get((r["dataset"], method), r) for r in part]
            labelled = [arms[r["dataset"], method] for r in part if (r["dataset"], method) in arms]
            entry[method] = {k: round(float(np.mean([r[k] for r in picked])), 4)
                             for k in ("vus_pr", "vus_roc", "auc_roc", "hit", "f1") if k in part[0]}
            entry[method].update({f"gated_{k}": round(float(np.sum([g[k] for g in labelled])), 3)
                                  for k in ("caught", "false_alarm")})
    return out


METHODS_SUITE = ("TRACE (default)", 'TRACE (spikes="auto")')


def run(args, record: Record) -> None:
    if args.part == "suite":
        return suite_part(record)
    for k, name in enumerate(SHAPES):
        for magnitude in MAGNITUDES:
            values, labels, prefix = spiked(name, magnitude, seed=100 * k + int(magnitude))
            for method in METHODS:
                row = {"part": "synthetic", "series": name, "magnitude": magnitude, "method": method}
                if record.done(row):
                    continue
                score, flags = scores(method, values, prefix)
                found = metrics({"benchmark": "WSD", "labels": labels[prefix:]}, score[prefix:])
                if flags is not None:
                    found.update(flagged=int(flags[prefix:].sum()), caught=int((flags & (labels == 1))[prefix:].sum()))
                record.add({**row, **found})
    try:  # the anomaly suite's data, where they are
        record.summary["suite_series_auto_joins"] = suite_gate()
    except FileNotFoundError as missing:
        print(f"suite gate not counted: {missing}")
    frame = pd.DataFrame([r for r in record.rows if r["part"] == "synthetic"])
    record.summary["means"] = {m: {k: round(float(frame[frame.method == m][k].mean()), 4) for k in ("auc_roc", "vus_pr")}
                               for m in METHODS}


if __name__ == "__main__":
    main(__name__)
