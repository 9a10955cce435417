"""The anomaly suite: NAB (52 series), UCR (81 series) and WSD (54 series), every
scorer in one run, with a tuning split for choosing defaults and a held-out split for
reporting.

``python -m benchmarks.anomaly_suite [--split tuning|held-out|all] [--no-zero-shot] [--limit N]
[--benchmarks UCR WSD NAB]`` (``--stage1-only --shard K N`` fills the cache in N parallel
processes; ``--benchmarks`` re-scores some suites and keeps the others' rows; ``--report`` writes
``docs/benchmarks_anomaly.md`` from the result file alone). The held-out split ran without zero-shot TRACE, which ties
the fine-tuned detector on the tuning split. sktime's ``MomentFMAnomalyDetector`` is not
in the suite: it scores about 400 points/s, about 4 hours for the suite's 5.6 million
points (its NAB figures are in ``docs/benchmarks_notes.md``).

Methods: TRACE (the default ``TraceAnomalyDetector``, and its score variants computed from
the same fit; ``package ...`` rows go through the package's own calibration), PyOD
IForest on 128-step windows, Darts ``KMeansScorer`` (KMeansAD, 128-step windows, k = 8),
stumpy's matrix-profile self-join (m = 128), and the z-scored absolute first difference.

Protocols:
- **UCR**: fit on the normal prefix ``[0, TRAINEND)``, score the whole series; the hit
  (top-scored point after the prefix within 100 steps of the anomaly), VUS-ROC and VUS-PR
  after the prefix.
- **NAB** (as ``benchmarks.anomaly``): fit on the first 30 %, score the whole series
  against ``combined_windows.json``; VUS-ROC, VUS-PR, AUC-ROC.
- **WSD** (short point anomalies): fit on the first 30 % (it may hold anomalies: the
  detectors must cope), score the whole series; AUC-ROC, VUS-PR, best F1. The few empty
  values are filled by linear interpolation.

Split: each series' *family* (UCR: the archive's source name without its DISTORTED/NOISE
prefix and trailing digits; NAB and WSD: the series) goes to the tuning split when
``crc32(family) % 3 == 0``, else to the held-out split, so no family is in both.

Stage 1 caches what is expensive per series (TRACE's fitted step errors, the embedding-
and shape-discord distances, the baselines' scores) under ``$TRACE_BENCH_CACHE`` (default
``~/.cache/trace_forecast/anomaly_suite``); stage 2 turns them into every score variant
and metric. Results: ``results/anomaly_suite.json`` (each row names its split).
"""

from __future__ import annotations

import os
import re
import time
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.anomaly import (
    VUS_BUFFER,
    _window_to_points,
    nab_series,
    score_first_difference,
    score_iforest,
    score_kmeans,
)
from benchmarks.harness import PROFILES, Record, environment, main, require
from trace_forecast.datasets import shared_data_dir
from trace_forecast.metrics import best_f1, ucr_hit, vus

WSD_FIT_SHARE = 0.3
MP_WINDOW = 128
DISCORD_LENGTH, DISCORD_STRIDE = 128, 8
CACHE = Path(os.environ.get("TRACE_BENCH_CACHE", Path.home() / ".cache" / "trace_forecast" / "anomaly_suite"))


# ---------------------------------------------------------------------- data
def _ucr_family(source: str) -> str:
    return re.sub(r"\d+$", "", re.sub(r"^(DISTORTED|NOISE)", "", source))


def split_of(family: str) -> str:
    return "tuning" if zlib.crc32(family.encode()) % 3 == 0 else "held-out"


def ucr_suite() -> list[dict]:
    folder = require(shared_data_dir() / "anomaly" / "UCR")
    out = []
    for path in sorted(folder.iterdir()):
        m = re.match(r"(\d+)_UCR_Anomaly_(.+)_(\d+)_(\d+)_(\d+)\.(txt|out)$", path.name)
        if not m:
            continue
        if path.suffix == ".out":
            values = pd.read_csv(path, header=None).iloc[:, 0].to_numpy(np.float64)
        else:                       # one value a line, or all on one line: every number
            values = np.array(path.read_text().split(), dtype=np.float64)
        train_end, begin, end = int(m.group(3)), int(m.group(4)), int(m.group(5))
        labels = np.zeros(len(values))
        labels[begin : end + 1] = 1
        family = _ucr_family(m.group(2))
        out.append({"name": f"UCR {m.group(1)} {m.group(2)}", "benchmark": "UCR", "family": family,
                    "values": values, "labels": labels, "train_end": train_end, "begin": begin, "end": end})
    return out


def wsd_suite() -> list[dict]:
    folder = require(shared_data_dir() / "anomaly" / "WSD" / "real-world")
    out = []
    for path in sorted(folder.glob("*.csv"), key=lambda p: int(p.stem)):
        frame = pd.read_csv(path)
        values = frame["value"].interpolate(limit_direction="both").to_numpy(np.float64)
        out.append({"name": f"WSD {path.stem}", "benchmark": "WSD", "family": f"WSD {path.stem}", "values": values,
                    "labels": frame["label"].to_numpy(), "train_end": int(len(values) * WSD_FIT_SHARE)})
    return out


def nab_suite() -> list[dict]:
    return [{**s, "benchmark": "NAB", "family": s["name"]} for s in nab_series(None)]


def load_suite(split: str = "all") -> list[dict]:
    series = nab_suite() + ucr_suite() + wsd_suite()
    return [s for s in series if split == "all" or split_of(s["family"]) == split]


# ---------------------------------------------------------------------- stage 1
def _cached(series: dict, what: str, compute) -> dict:
    path = CACHE / what / (re.sub(r"[^\w.-]", "_", series["name"]) + ".npz")
    if path.exists():
        with np.load(path) as data:
            return dict(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = compute()
    np.savez(path, **arrays)
    return arrays


def trace_arrays(series: dict, adapter: str, seed: int = 0) -> dict:
    """The default detector (``adapter="none"``: zero-shot) fitted on the prefix: raw
    step errors of the whole series and of the prefix (the detector's own)."""
    from trace_forecast import TraceAnomalyDetector

    values, train_end = series["values"], series["train_end"]
    detector = TraceAnomalyDetector(adapter=adapter, discords=False, random_state=seed)  # errors only
    start = time.perf_counter()
    detector.fit(pd.DataFrame({"x": values[:train_end]}))
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    errors = detector._scoring().errors(detector.network_, values[:, None].astype(np.float32))[:, 0]
    return {"errors": errors, "train_errors": detector.train_errors_[:, 0], "fit_seconds": fit_seconds,
            "score_seconds": time.perf_counter() - start}


def discord_arrays(series: dict) -> dict:
    """Embedding-discord distances (the pretrained backbone, :mod:`trace_forecast.tasks.discord`)
    of the whole series against the prefix's reference descriptors (the prefix's own
    subsequences not matching themselves, as in the package), and of the prefix against itself."""
    from trace_forecast.backbone import shared_backbone
    from trace_forecast.tasks.discord import SubsequenceIndex, discord_distances, reference_descriptors

    backbone = shared_backbone(None)
    values, train_end = series["values"].astype(np.float32), series["train_end"]
    start = time.perf_counter()
    reference, positions = reference_descriptors(backbone, [values[:train_end]], DISCORD_LENGTH, DISCORD_STRIDE)
    train = discord_distances(backbone, values[:train_end], None, DISCORD_LENGTH, DISCORD_STRIDE)
    full = discord_distances(backbone, values, reference, DISCORD_LENGTH, DISCORD_STRIDE, reference_positions=positions,
                             index=SubsequenceIndex.of([values[:train_end]]))
    return {"distances": full, "train_distances": train, "seconds": time.perf_counter() - start}


def shape_arrays(series: dict) -> dict:
    """Shape-discord distances (:mod:`trace_forecast.tasks.shape_discord`) of the whole
    series against the prefix's neighbours, and of the prefix against itself."""
    from trace_forecast.tasks.discord import SubsequenceIndex
    from trace_forecast.tasks.shape_discord import dense_neighbours, shape_distances, spread_floors, training_distances

    values, train_end = series["values"].astype(np.float32), series["train_end"]
    start = time.perf_counter()
    floor = spread_floors([[values[:train_end]]])
    train = training_distances([[values[:train_end]]], floor)[0][:, 0]
    reference, positions = dense_neighbours([values[:train_end]], floor[0])
    full = shape_distances(values, floor[0], reference, reference_positions=positions,
                           index=SubsequenceIndex.of([values[:train_end]]))
    return {"distances": full, "train_distances": train, "seconds": time.perf_counter() - start}


def matrix_profile(values: np.ndarray, m: int = MP_WINDOW) -> np.ndarray:
    """stumpy's self-join matrix profile (z-normalised distance of each subsequence to its
    nearest non-trivial neighbour), spread to points as the mean over covering windows."""
    import stumpy

    mp = stumpy.stump(values.astype(np.float64), m)[:, 0].astype(np.float64)
    mp[~np.isfinite(mp)] = np.nanmax(mp[np.isfinite(mp)]) if np.isfinite(mp).any() else 0.0
    return _window_to_points(mp, len(values), m)


def discord_prefix_arrays(series: dict) -> dict:
    """The embedding-discord distances against the training prefix's descriptors only (no
    self-join): what the self-join is measured against."""
    from trace_forecast.backbone import shared_backbone
    from trace_forecast.tasks.discord import nearest_distance, reference_descriptors, subsequence_embeddings, to_steps

    backbone = shared_backbone(None)
    values, train_end = series["values"].astype(np.float32), series["train_end"]
    reference, _ = reference_descriptors(backbone, [values[:train_end]], DISCORD_LENGTH, DISCORD_STRIDE)
    starts, full = subsequence_embeddings(backbone, values, DISCORD_LENGTH, DISCORD_STRIDE)
    dist = nearest_distance(full, reference.astype(np.float32))
    return {"distances": to_steps(starts, dist, len(values), DISCORD_LENGTH)}


BASELINES = {
    "PyOD IForest (windows)": lambda s: score_iforest(s["values"], s["train_end"], PROFILES["quick"], 0)[0],
    "KMeansAD (Darts KMeansScorer)": lambda s: score_kmeans(s["values"], s["train_end"], PROFILES["quick"], 0)[0],
    f"matrix-profile discord (stumpy, m={MP_WINDOW})": lambda s: matrix_profile(s["values"]),
    "z-scored first difference": lambda s: score_first_difference(s["values"], s["train_end"], PROFILES["quick"],
                                                                   0)[0],
}


def baseline_scores(series: dict, name: str) -> np.ndarray:
    key = re.sub(r"[^\w]+", "_", name).strip("_").lower()

    def compute():
        start = time.perf_counter()
        scores = BASELINES[name](series)
        return {"scores": scores, "seconds": time.perf_counter() - start}

    return _cached(series, key, compute)


# ---------------------------------------------------------------------- metrics
def metrics(series: dict, scores: np.ndarray) -> dict:
    scores = np.nan_to_num(np.asarray(scores, float), nan=0.0, posinf=1e12, neginf=-1e12)
    labels = series["labels"]
    if series["benchmark"] == "UCR":
        e = series["train_end"]
        after, lab = scores[e:], labels[e:]
        roc, pr = vus(after, lab, VUS_BUFFER)
        return {"hit": float(ucr_hit(after, series["begin"] - e, series["end"] - e)), "vus_roc": roc, "vus_pr": pr}
    if series["benchmark"] == "NAB":
        roc, pr = vus(scores, labels, VUS_BUFFER)
        auc, _ = vus(scores, labels, 0, steps=1)
        return {"vus_roc": roc, "vus_pr": pr, "auc_roc": auc}
    auc, _ = vus(scores, labels, 0, steps=1)
    _, pr = vus(scores, labels, VUS_BUFFER)
    return {"auc_roc": auc, "vus_pr": pr, "f1": best_f1(scores, labels)}


KEY = ("split", "dataset", "method")
PAGE = "benchmarks_anomaly.md"


def options(parser) -> None:
    parser.add_argument("--split", choices=("tuning", "held-out", "all"), default="tuning")
    parser.add_argument("--limit", type=int, default=None, help="first N series of each benchmark (smoke runs)")
    parser.add_argument("--stage1-only", action="store_true")
    parser.add_argument("--no-zero-shot", action="store_true",
                        help="skip zero-shot TRACE (fine-tuned and zero-shot tie on the tuning split)")
    parser.add_argument("--shard", type=int, nargs=2, default=(0, 1), metavar=("K", "N"),
                        help="stage 1 of every N-th series from the K-th (parallel processes)")
    parser.add_argument("--benchmarks", nargs="+", choices=SUITES, default=list(SUITES),
                        help="only these suites: their rows and threshold lines replace theirs in the file")


def run(args, record: Record) -> None:
    from benchmarks.anomaly_scores import VARIANTS, auto_threshold_steps, tail_calibrated, trace_variants

    suite = [s for s in load_suite(args.split) if s["benchmark"] in args.benchmarks]
    if args.limit:
        suite = [s for b in ("NAB", "UCR", "WSD") for s in [x for x in suite if x["benchmark"] == b][: args.limit]]
    if args.stage1_only:
        suite = suite[args.shard[0] :: args.shard[1]]
    thresholds = []
    for k, series in enumerate(suite):
        start = time.perf_counter()
        tuned = _cached(series, "trace_finetuned", lambda: trace_arrays(series, "gated_dsic"))
        zero = None if args.no_zero_shot else _cached(series, "trace_zeroshot", lambda: trace_arrays(series, "none"))
        discord = _cached(series, "discord", lambda: discord_arrays(series))
        discord["shape"] = _cached(series, "shape_discord", lambda: shape_arrays(series))
        base = {name: baseline_scores(series, name) for name in BASELINES}
        print(f"[{k + 1}/{len(suite)}] {series['name']} n={len(series['values'])} "
              f"{time.perf_counter() - start:.1f}s", flush=True)
        if args.stage1_only:
            continue
        split = split_of(series["family"])
        common = {"dataset": series["name"], "benchmark": series["benchmark"], "split": split}
        rows = [{**common, "method": name, "seconds": float(arrays["seconds"]), **metrics(series, arrays["scores"])}
                for name, arrays in base.items()]
        for discords in ("auto", True, False):
            steps, threshold = auto_threshold_steps(series, tuned, discord, discords)
            for multiple in MULTIPLES if discords == "auto" else (1.0,):
                thresholds.append({"split": split, "benchmark": series["benchmark"], "discords": str(discords),
                                   "multiple": multiple, **threshold_outcome(series, steps.flags(multiple * threshold))})
        if split == "tuning":
            prefix = _cached(series, "discord_prefix", lambda: discord_prefix_arrays(series))
            rows.append({**common, "method": "TRACE [discord, training prefix only]",
                         **metrics(series, tail_calibrated(prefix["distances"], discord["train_distances"], 1.0))})
        for label, arrays in (("TRACE", tuned), ("TRACE zero-shot", zero)):
            if arrays is not None:
                rows += [{**common, "method": f"{label} [{variant}]", **metrics(series, scores)}
                         for variant, scores in trace_variants(series, arrays, discord).items()]
        # A re-scored series replaces every row it had: a variant renamed or dropped leaves none behind.
        record.rows = [r for r in record.rows if (r["split"], r["dataset"]) != (split, series["name"])]
        record.extend(rows)
    if args.stage1_only:
        return
    record.protocol["variants"] = list(VARIANTS)
    for split in {t["split"] for t in thresholds}:
        table = threshold_table([t for t in thresholds if t["split"] == split])
        old = record.summary.setdefault("threshold", {}).get(split)
        record.summary["threshold"][split] = table if old is None else merged_lines(old, table, set(args.benchmarks))
        record.summary.setdefault("environments", {})[split] = environment()
    record.save()
    summary(record.rows)


MULTIPLES = (0.5, 0.7, 1.0, 1.5, 2.0)  # of the "auto" threshold: the trade-off its ranking allows


def threshold_outcome(series: dict, flags: np.ndarray) -> dict:
    """What the flags of one series did: caught the labelled anomaly (UCR: a flag within 100
    steps of it; NAB, WSD: the share of labelled segments with a flag; ``caught_after_fit``
    counts only those that start after the fitting prefix, which the threshold, above the
    training scores, cannot catch inside it) and raised a false alarm (a flag elsewhere,
    after the fitting prefix for UCR)."""
    from trace_forecast.metrics import segments

    labels, e = series["labels"].astype(bool), series["train_end"]
    if series["benchmark"] == "UCR":
        lo, hi = series["begin"] - 100, series["end"] + 100
        t = np.arange(len(flags))
        near = (t >= lo) & (t <= hi)
        caught = float(flags[near].any())
        return {"caught": caught, "caught_after_fit": caught, "false_alarm": float(flags[(t >= e) & ~near].any())}
    runs = segments(labels)
    later = [(a, b) for a, b in runs if a >= e]
    return {"caught": float(np.mean([flags[a:b].any() for a, b in runs])) if runs else 0.0,
            "caught_after_fit": float(np.mean([flags[a:b].any() for a, b in later])) if later else np.nan,
            "false_alarm": float(flags[~labels].any())}


def threshold_table(outcomes: list[dict]) -> str:
    """Anomalies caught and series with a false alarm: at the ``"auto"`` threshold for each
    ``discords`` choice, then the default's trade-off at multiples of its threshold."""
    frame = pd.DataFrame(outcomes)
    if frame.empty:
        return ""
    if "multiple" not in frame:
        frame["multiple"] = 1.0
    lines = ["| benchmark | discords | anomalies caught | caught after the fitting prefix | series with a false alarm |",
             "|---|---|---|---|---|"]
    stats = frame[frame.multiple == 1.0].groupby(["benchmark", "discords"])[
        ["caught", "caught_after_fit", "false_alarm"]].mean()
    for (bench, discords), row in stats.iterrows():
        lines.append(f"| {bench} | {discords} | {row['caught']:.0%} | {row['caught_after_fit']:.0%} "
                     f"| {row['false_alarm']:.0%} |")
    auto = frame[frame.discords == "auto"]
    if auto.multiple.nunique() > 1:
        lines += ["", "The default (`discords=\"auto\"`) with its evidence compared to multiples of the `\"auto\"` "
                  "threshold: anomalies caught after the fitting prefix / series with a false alarm.", "",
                  "| benchmark | " + " | ".join(f"{m:g}×" for m in sorted(auto.multiple.unique())) + " |",
                  "|---|" + "---|" * auto.multiple.nunique()]
        stats = auto.groupby(["benchmark", "multiple"])[["caught_after_fit", "false_alarm"]].mean()
        for bench in sorted(auto.benchmark.unique()):
            cells = [f"{stats.loc[(bench, m), 'caught_after_fit']:.0%} / {stats.loc[(bench, m), 'false_alarm']:.0%}"
                     for m in sorted(auto.multiple.unique())]
            lines.append(f"| {bench} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def merged_lines(old: str, new: str, replaced: set[str]) -> str:
    """``new``'s table rows for the ``replaced`` benchmarks, ``old``'s for the others (a run
    of some suites keeps the others' lines; each row is one benchmark's means)."""
    def tagged(text: str):
        """``(table, benchmark, line)`` per line: which table it is in, the benchmark of its row."""
        table = 0
        for line in text.splitlines():
            table += line.startswith("| benchmark |")
            yield table, line.split("|")[1].strip() if line.startswith("| ") else "", line

    rows: dict[tuple[bool, int, str], list[str]] = {}
    for is_new, text in ((False, old), (True, new)):
        for table, bench, line in tagged(text):
            rows.setdefault((is_new, table, bench), []).append(line)
    lines = []
    for table, bench, line in tagged(new):
        if bench not in SUITES:
            lines.append(line)
            if line.startswith("|---"):  # the table's rows, benchmark by benchmark
                for b in sorted(SUITES):
                    lines += rows.get((b in replaced, table, b), [])
    return "\n".join(lines)


# VUS-PR first: the headline metric, as TSB-AD ranks detectors (AUC-ROC flatters rare anomalies).
COLUMNS = {"UCR": ["vus_pr", "hit", "vus_roc"], "NAB": ["vus_pr", "vus_roc", "auc_roc"],
           "WSD": ["vus_pr", "auc_roc", "f1"]}
SUITES = ("UCR", "WSD", "NAB")


def rank_table(frame: pd.DataFrame, methods: list[str]) -> str:
    """Each method's mean VUS-PR per suite, its rank there (1 = best) and its rank averaged
    over the suites, as TSB-AD ranks detectors; methods missing from a suite are left out."""
    suites = [b for b in SUITES if (frame.benchmark == b).any()]
    means = {b: frame[frame.benchmark == b].groupby("method")["vus_pr"].mean() for b in suites}
    common = [m for m in methods if all(m in means[b].index for b in suites)]
    ranks = {b: means[b][common].rank(ascending=False, method="min") for b in suites}
    average = pd.Series({m: np.mean([ranks[b][m] for b in suites]) for m in common}).sort_values()
    lines = ["| method | " + " | ".join(f"{b} VUS-PR (rank)" for b in suites) + " | average rank |",
             "|---|" + "---|" * (len(suites) + 1)]
    for m in average.index:
        cells = " | ".join(f"{means[b][m]:.3f} ({int(ranks[b][m])})" for b in suites)
        lines.append(f"| {m} | {cells} | {average[m]:.2f} |")
    return "\n".join(lines)


def _table(frame: pd.DataFrame, bench: str, methods: list[str] | None = None) -> str:
    part = frame[frame.benchmark == bench]
    if methods is not None:
        part = part[part.method.isin(methods)]
    cols = COLUMNS[bench]
    stats = part.groupby("method")[cols].agg(["mean", "count"])
    order = stats[(cols[0], "mean")].sort_values(ascending=False).index
    lines = [f"| method | {' | '.join(cols)} | series |", "|---|" + "---|" * (len(cols) + 1)]
    for m in order:
        values = " | ".join(f"{stats.loc[m, (c, 'mean')]:.3f}" for c in cols)
        lines.append(f"| {m} | {values} | {int(stats.loc[m, (cols[0], 'count')])} |")
    return "\n".join(lines)


def page(result: dict) -> str:
    from benchmarks.anomaly_scores import VARIANTS

    out = ["# Anomaly suite: NAB, UCR and WSD",
           "`python -m benchmarks.anomaly_suite --split tuning|held-out` writes the file. Do not edit by hand.", "",
           __doc__.split("\n\n", 1)[1].strip(), ""]
    for split in ("held-out", "tuning"):
        frame = pd.DataFrame([r for r in result["rows"] if r["split"] == split])
        if frame.empty:
            continue
        env = result["summary"]["environments"][split]
        out += [f"## {split.capitalize()} split", "",
                f"Environment: {env.get('cpu_model', env.get('cpu'))}, torch {env['torch']}, "
                f"{env.get('torch_threads')} threads.", ""]
        present = set(frame.method)
        trace = [f"TRACE [{v}]" for v in VARIANTS] + [f"TRACE zero-shot [{v}]" for v in VARIANTS[:2]]
        methods = sorted(set(BASELINES)) + [m for m in trace if m in present]
        if split == "held-out":
            methods = sorted(set(BASELINES)) + sorted(m for m in present if m.startswith("TRACE [package"))
        default = "TRACE [package default]"
        if default not in present:  # rows scored before the current default (the result's note says so)
            default = next(m for m in methods if "the previous default" in m)
            out += [result["summary"].get("held_out_note", ""), ""]
        out += ["### Ranks by VUS-PR", "",
                "Mean VUS-PR per suite, each method's rank in it, and the rank averaged over the suites: the "
                f"default detector ({default}) against the baselines, then with every variant.", "",
                rank_table(frame, sorted(set(BASELINES)) + [default]), "",
                rank_table(frame, methods), ""]
        for bench in ("UCR", "NAB", "WSD"):
            if (frame.benchmark == bench).any():
                out += [f"### {bench}", "", _table(frame, bench, methods), ""]
        if split in result["summary"].get("threshold", {}):
            out += ["### The default `threshold=\"auto\"`", "", result["summary"]["threshold"][split], ""]
    return "\n".join(out).rstrip()


def summary(rows: list[dict]) -> None:
    frame = pd.DataFrame(rows)
    for bench, cols in (("UCR", ["hit", "vus_roc", "vus_pr"]), ("NAB", ["vus_roc", "vus_pr", "auc_roc"]),
                        ("WSD", ["auc_roc", "vus_pr", "f1"])):
        part = frame[frame.benchmark == bench]
        if len(part):
            print(f"\n{bench} ({part.dataset.nunique()} series)")
            print(part.groupby("method")[cols].mean().round(3).sort_values(cols[0], ascending=False).to_string())


if __name__ == "__main__":
    main(__name__)
