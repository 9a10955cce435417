"""Turn ``benchmarks/results/*`` into ``docs/benchmarks.md`` and ``docs/figures/*.png``.

``python -m benchmarks.report [--profile quick]``. Every number in the page comes from
the raw result files; ratios compare runs of the same file (same process, machine, data
and backbone).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.harness import RESULTS, flat, load

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
FIGURES = DOCS / "figures"
ORDER = ["TRACE", "TRACE zero-shot", "gated+linear head", "LoRA (PEFT) + recon head", "AdaLoRA (PEFT) + recon head", "linear probing",
         "full fine-tuning", "TRACE, temporal map truncate", "TRACE, temporal map pool", "TRACE, temporal map dwconv",
         "Darts NLinear", "Darts DLinear", "RevIN linear", "sktime MomentFMForecaster", "seasonal naive (24)", "seasonal naive (52)",
         "Naive2", "TRACE, longer fine-tune", "zero-shot reconstruction", "PyOD IForest (windows)",
         "Darts KMeansScorer", "sktime MomentFMAnomalyDetector", "z-scored first difference", "rolling z-score (64)"]


def _record(name: str) -> dict | None:
    """A result file of ``RESULTS``, flattened (``harness.flat``); None where it has not been run."""
    path = RESULTS / name
    return flat(json.loads(path.read_text())) if path.exists() else None


def _load(name: str, profile: str) -> tuple[pd.DataFrame, dict] | None:
    data = _record(f"{name}_{profile}.json")
    if data is None:
        return None
    return pd.DataFrame(data["rows"]), data["environment"]


def other_machines(name: str, profile: str) -> str | None:
    """The lines naming the rows of ``<name>_<profile>.json`` that ran on another machine
    (its ``summary["other_machines"]``, as on the harness's pages); None where there are none."""
    others = (_record(f"{name}_{profile}.json") or {}).get("other_machines", [])
    return "\n".join(f"Rows run on another machine: {o['what']} ({o['cpu_model']}, {o['threads']} thread(s), "
                     f"{o['date']})." for o in others) or None


def ran_elsewhere(env: dict | None, other: dict) -> str | None:
    """A line naming ``other``'s machine where a suite ran on another CPU than the page's
    environment ``env``; None on the same one (or with no page environment yet)."""
    if env is None or other.get("cpu_model") == env.get("cpu_model"):
        return None
    return f"Ran on another machine: {other.get('cpu_model')}, {other.get('torch_threads')} thread(s)."


def durations_of(profile: str) -> dict[str, tuple[float, str]]:
    """Wall seconds of the last run of each of the profile's suites (from the result files' run
    logs), with the run's ``note`` (e.g. that it shared the machine)."""
    out = {}
    for suite in ("long_horizon", "m4", "examples", "anomaly", "small_data"):
        for run in (_record(f"{suite}_{profile}.json") or {}).get("runs", []):
            methods = run["protocol"].get("methods")
            out[suite + (f" ({' '.join(methods)})" if methods else "")] = (run["seconds"], run.get("note", ""))
    return out


def _order(methods) -> list[str]:
    known = [m for m in ORDER if m in set(methods)]
    return known + sorted(set(methods) - set(known))


def _fmt(values: pd.Series, digits: int = 3) -> str:
    values = values.dropna()
    if values.empty:
        return "–"
    if len(values) == 1:
        return f"{values.iloc[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def long_horizon_section(df: pd.DataFrame) -> str:
    out = []
    for dataset, part in df.groupby("dataset", sort=False):
        horizons = sorted(part["horizon"].unique())
        rows = []
        for method in _order(part["method"].unique()):
            m = part[part["method"] == method]
            if method.startswith("TRACE, temporal map"):
                continue
            cells = []
            for h in horizons:
                mh = m[m["horizon"] == h]
                cells.append(f"{_fmt(mh['mse'])} / {_fmt(mh['mae'])}" if len(mh) else "–")
            params = m.groupby("horizon")["trainable_parameters"].first()
            prange = f"{int(params.min()):,}" + ("" if params.min() == params.max() else f"–{int(params.max()):,}")
            rows.append([method, *cells, prange])
        windows = part.groupby("horizon")["test_windows"].first()
        out.append(f"### {dataset}: MSE / MAE (train-standardised), trainable parameters\n\n"
                   + _table(["method", *[f"H={h}" for h in horizons], "trainable params"], rows)
                   + f"\n\nTest windows scored per horizon: {', '.join(f'{int(windows[h]):,}' for h in horizons)}.\n")
        # the paper's claim, as ratios from this run
        ratio_rows = []
        for h in horizons:
            ph = part[part["horizon"] == h].groupby("method")["trainable_parameters"].first()
            mh = part[part["horizon"] == h].groupby("method")["mse"].mean()
            if {"TRACE", "linear probing", "full fine-tuning"} <= set(ph.index):
                ratio_rows.append([
                    str(h),
                    f"{100 * ph['TRACE'] / ph['linear probing']:.1f} %",
                    f"{100 * ph['TRACE'] / ph['full fine-tuning']:.2f} %",
                    f"{mh['TRACE'] / mh['linear probing']:.3f}",
                    f"{mh['TRACE'] / mh['full fine-tuning']:.3f}",
                ])
        if ratio_rows:
            out.append(f"TRACE against linear probing and full fine-tuning on {dataset} (same run):\n\n" + _table(
                ["H", "params vs LP", "params vs full FT", "MSE ratio vs LP", "MSE ratio vs full FT"], ratio_rows))
    abl = df[(df["dataset"] == "ETTh1") & (df["horizon"] == 96) & df["method"].str.startswith("TRACE")]
    if abl["method"].nunique() > 1:
        rows = [[m, _fmt(abl[abl.method == m]["mse"]), _fmt(abl[abl.method == m]["mae"]),
                 f"{int(abl[abl.method == m]['trainable_parameters'].iloc[0]):,}"] for m in _order(abl["method"].unique())]
        out.append("### Reconstruction-head variants (ETTh1, H = 96)\n\n" + _table(["head", "MSE", "MAE", "trainable params"], rows))
    return "\n\n".join(out)


def cost_section(df: pd.DataFrame, one_machine: bool = True) -> str:
    """Fit time, prediction throughput and peak memory at ETTh1, H = 96; ratios against TRACE
    only where every row ran on one machine (``one_machine``)."""
    part = df[(df["dataset"] == "ETTh1") & (df["horizon"] == 96) & df["fit_seconds"].notna()]
    if part.empty or "TRACE" not in set(part["method"]):
        return ""
    ref = part[part["method"] == "TRACE"][["fit_seconds", "predict_windows_per_s", "peak_rss_mb"]].median()
    rows = []
    for method in _order(part["method"].unique()):
        m = part[part["method"] == method][["fit_seconds", "predict_windows_per_s", "peak_rss_mb"]].median()
        fit, throughput = [f"{m.fit_seconds:.1f}"], [f"{m.predict_windows_per_s:,.0f}"]
        if one_machine:
            fit.append(f"{m.fit_seconds / ref.fit_seconds:.2f}")
            throughput.append(f"{m.predict_windows_per_s / ref.predict_windows_per_s:.2f}")
        rows.append([method, *fit, *throughput, f"{m.peak_rss_mb:,.0f}"])
    header = (["method", "fit s", "fit vs TRACE", "predict windows/s", "throughput vs TRACE", "peak RSS MB"] if one_machine
              else ["method", "fit s", "predict windows/s", "peak RSS MB"])
    lead = ("Ratios are against TRACE in the same run." if one_machine else
            "Some rows ran on another machine (named above), so no ratios are drawn between them.")
    return ("### Cost (ETTh1, H = 96): fit wall time, prediction throughput, peak memory\n\n"
            f"{lead} Peak RSS is the resident set of the whole process during the fit\n"
            "(it includes the data, the Python runtime and any earlier allocations that were not returned).\n\n"
            + _table(header, rows))


def m4_section(df: pd.DataFrame) -> str:
    rows = []
    for method in _order(df["method"].unique()):
        m = df[df["method"] == method]
        params = m["trainable_parameters"].iloc[0]
        fit = m["fit_seconds"].median() if "fit_seconds" in m and m["fit_seconds"].notna().any() else None
        rows.append([method, _fmt(m["smape"]), _fmt(m["mase"]), _fmt(m["owa"]), f"{int(params):,}",
                     "–" if fit is None else f"{fit:.1f}"])
    return "### M4 Hourly (414 series, H = 48)\n\n" + _table(["method", "sMAPE", "MASE", "OWA", "trainable params", "fit s"], rows)


def _first_per_category(names, k: int) -> list[str]:
    by: dict[str, list[str]] = {}
    for name in sorted(names):
        by.setdefault(name.split("/")[0], []).append(name)
    return [n for names_ in by.values() for n in names_[:k]]


def anomaly_section(df: pd.DataFrame) -> str:
    out = []
    ucr = df[df["benchmark"] == "UCR"]
    if not ucr.empty:
        rows = []
        for method in _order(ucr["method"].unique()):
            m = ucr[ucr["method"] == method]
            cells = [f"{'hit' if r.ucr_hit else 'miss'} (rank {int(r.anomaly_rank)})" for r in m.itertuples()]
            rows.append([method, *cells, f"{int(m['ucr_hit'].sum())}/{len(m)}"])
        names = list(dict.fromkeys(ucr["dataset"]))
        out.append("### UCR: hit (top score within 100 steps of the anomaly) and rank of the best anomalous point\n\n"
                   + _table(["method", *names, "hits"], rows))
    nab = df[df["benchmark"] == "NAB"]
    if not nab.empty:
        rows = []
        for method in _order(nab["method"].unique()):
            m = nab[nab["method"] == method]
            auc = m["auc_roc"] if "auc_roc" in m else pd.Series(dtype=float)
            rows.append([method, *(f"{m[c].mean():.3f}" for c in ("f1", "f1_point_adjusted", "vus_roc", "vus_pr")),
                         f"{auc.mean():.3f}", f"{m['auc_pr'].mean():.3f}", f"{int((auc < 0.5).sum())}",
                         f"{m['fit_seconds'].median():.1f}"])
        out.append(f"### NAB ({nab['dataset'].nunique()} series, mean over series)\n\n" + _table(
            ["method", "best F1", "best F1 (point-adjusted)", "VUS-ROC", "VUS-PR", "AUC-ROC", "AUC-PR",
             "series with AUC-ROC < 0.5", "median fit s"], rows))
        subset = nab[nab["dataset"].isin(_first_per_category(nab["dataset"].unique(), 2))]
        rows = [[method, f"{m['f1'].mean():.3f}", f"{m['vus_roc'].mean():.3f}"]
                for method in _order(subset["method"].unique()) for m in [subset[subset["method"] == method]]]
        out.append(f"The {subset['dataset'].nunique()}-series subset earlier reports used (first two series of "
                   "each category):\n\n" + _table(["method", "best F1", "VUS-ROC"], rows))
    return "\n\n".join(out)


def anomaly_choice_section() -> str | None:
    """The score variants (``benchmarks.anomaly_variants``) and long-series memory
    (``benchmarks.anomaly_memory``)."""
    variants, memory = _record("anomaly_variants.json"), _record("anomaly_memory.json")
    out = []
    if variants is not None:
        rows = [[r["score"], r["unit"], str(r.get("stride", 64)), r["smoothing"], f"{r['nab_f1']:.3f}", f"{r['nab_vus_roc']:.3f}",
                 f"{r['nab_auc_roc']:.3f}", str(r["nab_auc_below_half"]),
                 ", ".join(str(k) for k in r["ucr_ranks"]), f"{r['ucr_hits']}/{len(r['ucr_ranks'])}"]
                for r in variants["rows"]]
        n = variants["rows"][0]["nab_series"]
        out += ["### Choosing the score: variants, zero-shot",
                f"`python -m benchmarks.anomaly_variants`: the embedded backbone (v1, before backbone v2; not re-run) "
                "zero-shot, every variant scored "
                f"on the {n} NAB series with anomalies and the three UCR series, standardised against the "
                "training prefix's errors. Mean best F1, VUS-ROC and AUC-ROC over NAB series; UCR: rank of the "
                "best anomalous point after the training prefix, and hits.",
                _table(["score", "error unit", "stride", "smoothing", "NAB best F1", "NAB VUS-ROC", "NAB AUC-ROC",
                        "NAB series AUC < 0.5", "UCR ranks (001, 002, 198)", "UCR hits"], rows)]
    if memory is not None:
        rows = [[f"{r['points']:,}", r.get("smoothing", ""), f"{r['seconds']:.1f}", f"{r['points_per_s']:,.0f}",
                 f"{r['peak_rss_mb']:.0f}", f"{r['peak_above_start_mb']:.0f}"] for r in memory["rows"]]
        seconds = {(r.get("smoothing"), r["points"]): r["seconds"] for r in memory["rows"]}
        env = memory["environment"]
        out += ["### Long series: memory and throughput",
                f"`python -m benchmarks.anomaly_memory` ({env.get('cpu_model', env.get('cpu'))}, "
                f"{env.get('torch_threads')} torch thread(s)): the default `TraceAnomalyDetector` (fitted on 5,000 "
                "points) scores synthetic series of growing length in one process; windows are streamed in "
                "batches, so only the per-step arrays grow with the length. The same series are then scored "
                "by the same fit without its shape discord, and by a fit with the previous default smoothing "
                "(`\"multi-scale\"`, with the shape discord). Peak above start is measured against the "
                "process's memory before each call, so later arms reuse memory freed by earlier ones.",
                _table(["points", "smoothing", "score s", "points/s", "peak RSS MB", "peak above start MB"], rows)]
        for other, label in (("two-span, no shape discord", "the default over the same fit without its shape discord"),
                             ("multi-scale", "two-span over multi-scale")):
            ratios = [f"{n:,} points {seconds[('two-span', n)] / seconds[(other, n)]:.2f}"
                      for s, n in seconds if s == "two-span" and (other, n) in seconds]
            if ratios:
                out.append(f"Time to score, {label}: " + ", ".join(ratios) + ".")
    return "\n\n".join(out) if out else None


# ---------------------------------------------------------------------- figures
def recipe_section() -> str | None:
    """The fit-time/accuracy sweep, the defaults against NLinear, Gated DSIC's cost and
    prediction throughput (``benchmarks.recipe_sweep``, ``benchmarks.throughput``,
    ``benchmarks.predict_throughput``)."""
    sweep, defaults = _record("recipe_sweep.json"), _record("recipe_defaults.json")
    if sweep is None:
        return None
    env = ", ".join(f"{k} {v}" for k, v in sweep["environment"].items())
    rows = sweep["rows"]
    nl = next(r for r in rows if r.get("method", "").startswith("Darts NLinear"))
    out = ["## Fine-tuning recipe: defaults chosen from measurements",
           f"`python -m benchmarks.recipe_sweep` ({env}; measured with backbone v1 and the head "
           "reading the unmasked reconstruction, before backbone v2; not re-run). Each point fits `TraceForecaster` with the given "
           "windows per epoch, epochs and batch size (every other setting at its default: closed-form head start "
           "on up to 8,192 windows, Gated DSIC) on ETTh1's 8,640 training rows (H = 96, lookback 512, its last "
           f"20 % validate) and on M4 Hourly's 414 series (H = 48). Darts `NLinearModel` (paper configuration, "
           f"10 epochs, best validation epoch) fitted ETTh1 in {nl['fit_seconds']:.1f} s (median of "
           f"{len(nl.get('fit_seconds_all', [1]))}) in the same process. ETTh1 MSE over every 4th test window.",
           "![recipe sweep](figures/recipe_sweep.png)"]
    grid = [r for r in rows if "max_windows" in r]
    table = []
    for r in grid:
        metric = f"MSE {r['mse']:.4f}" if r["dataset"] == "ETTh1" else f"OWA {r['owa']:.3f} (sMAPE {r['smape']:.2f})"
        ratio = f"{r['fit_ratio_to_nlinear']:.2f}×" if "fit_ratio_to_nlinear" in r else "–"
        table.append([r["dataset"], str(r["max_windows"]), str(r["max_epochs"]), str(r["batch_size"]),
                      f"{r['fit_seconds']:.1f}", ratio, metric, f"{r['peak_rss_mb']:.0f}"])
    out.append(_table(["data", "windows/epoch", "epochs", "batch", "fit s", "fit / NLinear", "accuracy",
                       "peak RSS MB"], table))
    if defaults is not None:
        d_rows = defaults["rows"]
        d_nl = next(r for r in d_rows if r.get("method", "").startswith("Darts NLinear"))
        table = [[r["method"], f"{r['fit_seconds']:.1f} ({', '.join(f'{t:.1f}' for t in r.get('fit_seconds_all', []))})",
                  f"{r['fit_seconds'] / d_nl['fit_seconds']:.2f}×", f"{r['mse']:.4f} / {r['mae']:.4f}",
                  f"{r['predict_windows_per_s']:,.0f}"] for r in d_rows]
        out += ["### The defaults on ETTh1's training split (every test window, stride 1)",
                f"`python -m benchmarks.recipe_sweep --part defaults` (same machine, current defaults): median fit time of "
                f"{len(d_nl.get('fit_seconds_all', [1]))} fits each. Targets: fit ≤ 3× NLinear and MSE ≤ 0.375.",
                _table(["method", "fit s (each run)", "fit / NLinear", "MSE / MAE", "predict windows/s"], table)]
    ridge = _record("recipe_ridge.json")
    if ridge is not None:
        table = []
        for size in sorted({r["head_start_windows"] for r in ridge["rows"]}):
            part = [r for r in ridge["rows"] if r["head_start_windows"] == size]
            mses = np.array([r["mse"] for r in part])
            table.append([f"{size:,}", ", ".join(f"{m:.4f}" for m in mses), f"{mses.mean():.4f}", f"{mses.max():.4f}",
                          f"{np.median([r['fit_seconds'] for r in part]):.1f}"])
        out += ["### Closed-form head start: windows against seed spread",
                "`python -m benchmarks.recipe_sweep --part ridge` (backbone v3, before the current recipe; not re-run): the default `TraceForecaster()` on ETTh1 (every 4th test "
                "window) over seeds 0–4, with the head's closed-form start on 4,096 or 8,192 training windows. The "
                "temporal map has 513 inputs per output; 4,096 windows gave a seed-dependent head, so the default "
                "uses 8,192 (forward passes only).",
                _table(["head-start windows", "MSE per seed", "mean", "worst", "median fit s"], table)]
    tp = _record("throughput_small_cpu.json")
    if tp is not None and tp.get("dsic_cost"):
        cost = tp["dsic_cost"]
        table = [[r["method"], f"{r['seconds_per_step']:.3f}", f"{r['samples_per_s']:.1f}",
                  f"{r['peak_rss_mb']:.0f}", f"{r['trainable_parameters']:,}"] for r in tp["rows"]]
        first = tp["rows"][0]
        out += ["### Gated DSIC's cost (MOMENT-small size, random weights, CPU fp32)",
                f"`python -m benchmarks.throughput --size small --batch-size {first['batch_size']} --steps "
                f"{first['steps']} --device cpu`: each method in a fresh process, default Gated DSIC schedule. "
                f"TRACE takes **{cost['step_time_ratio']:.2f}×** the step time and **{cost['peak_memory_ratio']:.2f}×** "
                "the peak memory of the same gated LoRA without selection (targets ≤ 1.3× and ≤ 1.5×).",
                _table(["method", "s/step", "samples/s", "peak RSS MB", "trainable"], table)]
    pt = _record("predict_throughput.json")
    if pt is not None:
        table = [[r["method"], r["path"], r["label"], f"{r['windows']:,}", f"{r['windows_per_s']:,.0f}"]
                 for r in sorted(pt["rows"], key=lambda r: (r["method"], r["path"], r["label"] != "before"))]
        out += ["### Prediction throughput (ETTh1 test split, H = 96, every window)",
                "`python -m benchmarks.predict_throughput`: univariate windows forecast per second, the same fitted "
                "model timed in one process; \"before\" is the previous version of the package (its last landed "
                "commit) run by the same script on the same machine.",
                _table(["model", "path", "version", "windows", "windows/s"], table)]
    return "\n\n".join(out)


def backbone_ablation_section() -> str | None:
    """Pretrained vs random backbone, with and without the predicted future."""
    record = _record("backbone_ablation.json")
    if record is None:
        return None
    df = pd.DataFrame(record["rows"])
    df["setting"] = df["backbone"] + ", future_patches=" + df["future_patches"].astype(str)
    wide = df.pivot_table(index=["dataset", "horizon"], columns="setting", values="mse").reset_index()
    cols = ["pretrained, future_patches=auto", "random, future_patches=auto",
            "pretrained, future_patches=0", "random, future_patches=0"]
    rows = []
    for _, r in wide.iterrows():
        gap = r["random, future_patches=auto"] / r["pretrained, future_patches=auto"] - 1
        rows.append([r["dataset"], str(int(r["horizon"])), *[f"{r[c]:.3f}" for c in cols], f"{100 * gap:+.1f} %"])
    return "\n\n".join([
        "## Does the pretrained backbone matter?",
        "Same recipe (default `TraceForecaster`, seed 0) on the embedded backbone and on a randomly initialised "
        "backbone of the same shape, with the head reading the backbone's prediction of hidden future patches "
        "(`future_patches=\"auto\"`, the default) or the reconstruction of the unmasked context (`0`). Test MSE "
        "(`python -m benchmarks.backbone_ablation`).",
        _table(["data set", "H", *cols, "random vs pretrained (auto)"], rows),
    ])


def dsic_ablation_section() -> str | None:
    """Gated DSIC against other selections at matched trainable parameters, 3 seeds."""
    record = _record("dsic_ablation.json")
    if record is None:
        return None
    df = pd.DataFrame(record["rows"])
    order = list(dict.fromkeys(df["variant"]))
    datasets = list(dict.fromkeys(df["dataset"]))
    head_only = df[df.variant == "head only"].groupby("dataset")["trainable_parameters"].max()
    df = df.assign(adapters_kept=df["trainable_parameters"] > df["dataset"].map(head_only))
    rows = []
    for variant in order:
        cells = []
        for dataset in datasets:
            sub = df[(df.variant == variant) & (df.dataset == dataset)]
            v = sub["value"]
            kept = "" if variant == "head only" else f" ({int(sub['adapters_kept'].sum())}/{len(sub)})"
            cells.append(f"{v.mean():.4f} ± {v.std(ddof=1) if len(v) > 1 else 0:.4f}{kept}")
        rows.append([variant, *cells])
    metrics = {d: df[df.dataset == d]["metric"].iloc[0] for d in datasets}
    seeds = sorted(df["seed"].unique())
    training = record["training"]
    return "\n\n".join([
        "## Gated DSIC ablation (matched trainable parameters)",
        f"Seeds {', '.join(map(str, seeds))} (mean ± std); learning rate {training['learning_rate']}, "
        f"{training['max_windows']:,} windows × {training['max_epochs']} epochs, the default recipe (reconstruction "
        "head with its closed-form start; the state with the lowest validation loss kept, the start included), "
        "embedded backbone (`python -m benchmarks.dsic_ablation`). In brackets: in how many fits validation kept "
        "the adapters; in the others the head start won and the adapters were switched off, so that fit equals "
        "the head-only one. Lower is better.",
        _table(["variant", *[f"{d} {metrics[d]}" for d in datasets]], rows),
    ])


def small_data_section(df: pd.DataFrame, command: str) -> str:
    """Short series that sktime ships: default TRACE vs Theta, AutoETS, seasonal naive (a profile's rows)."""
    if "seed" not in df:  # results written before the suite took seeds: seed 0
        df = df.assign(seed=0)
    methods = list(dict.fromkeys(df["method"]))
    series = list(dict.fromkeys(df["series"]))
    info = df.drop_duplicates("series").set_index("series")
    rows = [[name, str(info.loc[name, "length"]), str(info.loc[name, "horizon"]),
             *[_fmt(df[(df.series == name) & (df.method == m)]["mape"]) for m in methods]] for name in series]
    # mean over series, per seed (classical methods have one run)
    per_seed = df.groupby(["method", "seed"], dropna=False, sort=False)["mape"].mean()
    rows.append(["mean", "", "", *[_fmt(per_seed[m]) for m in methods]])
    fold_s = df.groupby("method", sort=False)["seconds_per_fold"].median()
    seeds = sorted(df["seed"].dropna().unique())
    return "\n\n".join([
        "## Short series (sktime's data sets)",
        f"`{command}`: sktime `evaluate`, 4 expanding folds ending at the series' end, "
        "horizon of one season, MAPE (mean over folds); every estimator at its defaults except the seasonal "
        f"period; TRACE with seeds {', '.join(str(int(x)) for x in seeds)}"
        + (" (mean ± std)" if len(seeds) > 1 else "") + ". Median seconds per fold: "
        + ", ".join(f"{m} {v:.2f}" for m, v in fold_s.items()) + ".",
        _table(["series", "length", "horizon", *methods], rows),
    ])


def head_start_section() -> str | None:
    """How the closed-form head start is solved (``benchmarks.head_start``)."""
    record = _record("head_start.json")
    if record is None:
        return None
    results = {r["variant"]: r for r in record["rows"]}
    metrics = [k for k in next(iter(results.values())) if k not in ("seconds", "variant")]
    short = {k: k.replace(" MSE", "").replace(" MAPE", "").replace(" OWA", "") for k in metrics}
    rows = [[name, *[f"{r[m]:.4f}" for m in metrics], f"{r['seconds'] / 60:.1f}"] for name, r in results.items()]
    unit = lambda k: "MSE" if k.endswith("MSE") else ("OWA" if k.endswith("OWA") else "MAPE")  # noqa: E731
    return "\n\n".join([
        "### Closed-form head start: shrinkage target and windows",
        f"`python -m benchmarks.head_start` (seed {record.get('seed', 0)}): the default `TraceForecaster` with "
        "its head's ridge start solved each way; ETTh1 over every 4th test window, ILI (L = 104) over every "
        "window, M4 Hourly (OWA) and the small-data suite (MAPE, 4 folds). Lower is better. The last column is "
        "the wall time of the whole row.",
        _table(["ridge start", *[f"{short[m]} {unit(m)}" for m in metrics], "min"], rows),
    ])


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def targets_section(lh: pd.DataFrame | None, m4: pd.DataFrame | None, small: pd.DataFrame | None) -> str | None:
    """The accuracy targets set for the fine-tuned model, checked on this profile's rows (means over seeds)."""
    lines = []
    if lh is not None:
        mean = lh.groupby(["dataset", "horizon", "method"])["mse"].mean()
        spread = lh.groupby(["dataset", "horizon", "method"])["mse"].std(ddof=1)
        for dataset, rivals in (("ETTh1", ("Darts NLinear", "RevIN linear")),
                                ("ILI (L = 104)", ("seasonal naive (52)", "RevIN linear"))):
            if dataset not in lh["dataset"].unique():
                continue
            cells, ok = [], True
            for h in sorted(lh[lh.dataset == dataset]["horizon"].unique()):
                t = mean[dataset, h, "TRACE"]
                best = {r: mean[dataset, h, r] for r in rivals if (dataset, h, r) in mean.index}
                ok &= all(t < v for v in best.values())
                cells.append(f"H = {h}: TRACE {t:.3f} ± {spread[dataset, h, 'TRACE']:.3f}, "
                             + ", ".join(f"{r} {v:.3f}" for r, v in best.items()))
            lines.append(f"- {dataset}, TRACE beats {' and '.join(rivals)} at every horizon: {_verdict(ok)} ("
                         + "; ".join(cells) + ").")
            if dataset == "ETTh1" and (dataset, 96, "TRACE") in mean.index:
                lines.append(f"- ETTh1, TRACE MSE ≤ 0.365 at H = 96: {_verdict(mean[dataset, 96, 'TRACE'] <= 0.365)} "
                             f"({mean[dataset, 96, 'TRACE']:.4f}).")
    if m4 is not None:
        owa = m4.groupby("method")["owa"].mean()
        t = owa.get("TRACE")
        if t is not None:
            rivals = {r: owa[r] for r in ("seasonal naive (24)", "Darts NLinear") if r in owa}
            lines.append(f"- M4 Hourly, TRACE's OWA below seasonal naive's and NLinear's: "
                         f"{_verdict(all(t < v for v in rivals.values()))} (TRACE {t:.3f} ± "
                         f"{m4[m4.method == 'TRACE']['owa'].std(ddof=1):.3f}; "
                         + ", ".join(f"{r} {v:.3f}" for r, v in rivals.items()) + ").")
    if small is not None:
        from benchmarks.small_data import TRACE

        by = small.groupby(["series", "method"], sort=False)["mape"].mean()
        names = list(dict.fromkeys(small["series"]))
        beats = {n: by[n, TRACE] < by[n, "seasonal naive"] for n in names}
        lines.append("- Small data, the default estimator beats seasonal naive on every series: "
                     f"{_verdict(all(beats.values()))} ("
                     + "; ".join(f"{n}: {by[n, TRACE]:.3f} vs {by[n, 'seasonal naive']:.3f}" for n in names) + ").")
        t, theta = by[:, TRACE].mean(), by[:, "ThetaForecaster"].mean()
        lines.append(f"- Small data, the default estimator beats Theta on average: {_verdict(t < theta)} "
                     f"(mean MAPE {t:.3f} vs {theta:.3f}).")
    if not lines:
        return None
    page = ("## Accuracy targets on this run\n\nComputed by the report from the rows above (means over seeds; "
            "± is the standard deviation over seeds).\n\n" + "\n".join(lines))
    backbone = backbone_targets(lh, m4)
    return page + ("\n\n" + backbone if backbone else "")


def backbone_targets(lh: pd.DataFrame | None, m4: pd.DataFrame | None) -> str | None:
    """The forecasting targets set for the embedded backbone, from the same rows."""
    lines = []
    if lh is not None and "TRACE zero-shot" in set(lh["method"]):
        mean = lh.groupby(["dataset", "horizon", "method"])["mse"].mean()
        if ("ETTh1", 96, "TRACE zero-shot") in mean.index:
            z = mean["ETTh1", 96, "TRACE zero-shot"]
            lines.append(f"- Zero-shot ETTh1 MSE ≤ 0.38 at H = 96: {_verdict(z <= 0.38)} ({z:.4f}).")
        if ("ETTh1", 96, "TRACE") in mean.index:
            t = mean["ETTh1", 96, "TRACE"]
            lines.append(f"- Fine-tuned ETTh1 MSE ≤ 0.360 at H = 96: {_verdict(t <= 0.360)} ({t:.4f}).")
    if m4 is not None:
        owa = m4.groupby("method")["owa"].mean()
        naive = owa.get("seasonal naive (24)")
        if "TRACE zero-shot" in owa and naive is not None:
            lines.append(f"- Zero-shot M4 Hourly OWA below seasonal naive's: {_verdict(owa['TRACE zero-shot'] < naive)} "
                         f"({owa['TRACE zero-shot']:.3f} vs {naive:.3f}).")
        if "TRACE" in owa:
            lines.append(f"- Fine-tuned M4 Hourly OWA ≤ 0.56: {_verdict(owa['TRACE'] <= 0.56)} ({owa['TRACE']:.3f}).")
    if not lines:
        return None
    return "## Backbone targets on this run\n\n" + "\n".join(lines)


def scaling_section() -> str | None:
    """Parallel back-testing against the sequential run, and prediction time against the
    number of series (``benchmarks.parallel_evaluate``, ``benchmarks.many_series``)."""
    parallel, many = _record("parallel_evaluate.json"), _record("many_series.json")
    if parallel is None and many is None:
        return None
    parts = ["## Scaling (see also the scaling-out page)"]
    if parallel is not None:
        rows = [[r["run"], f"{r['seconds']:.1f} s", f"{r['ratio_to_sequential']:.2f}x",
                 "yes" if r["scores_equal_sequential"] else "NO"] for r in parallel["rows"]]
        parts += [f"`python -m benchmarks.parallel_evaluate`: sktime `evaluate` with 2 workers on "
                  f"{parallel['cores']} cores, {parallel['case']}; one process, sequential first.",
                  _table(["run", "wall time", "vs sequential", "scores equal"], rows)]
    if many is not None:
        rows = [[f"{r['series']:,}", f"{r['fit_seconds']:.2f}", f"{r['predict_seconds']:.3f}",
                 f"{r['predict_ms_per_series']:.2f}"] for r in many["rows"]]
        fit = many["linear_fit"]
        parts += [f"`python -m benchmarks.many_series`: one `predict()` call for every series of a panel "
                  f"(length {many['length']}, context {many['context']}, horizon {many['horizon']}). Linear fit: "
                  f"{fit['seconds_per_series'] * 1000:.2f} ms per series, R² {fit['r2']:.3f}; log-log slope "
                  f"{many['log_log_exponent']:.2f}.",
                  _table(["series", "fit s", "predict s", "predict ms per series"], rows),
                  "![many_series.png](figures/many_series.png)"]
    return "\n\n".join(parts)


def section_figures() -> None:
    """The figures the sections link to, drawn from their result files."""
    from benchmarks import many_series, recipe_sweep

    sweep, many = _record("recipe_sweep.json"), _record("many_series.json")
    if sweep is not None:
        nlinear = next(r for r in sweep["rows"] if r.get("method", "").startswith("Darts NLinear"))
        recipe_sweep.figure(sweep["rows"], nlinear["fit_seconds"])
    if many is not None:
        many_series.figure(sorted(many["rows"], key=lambda r: r["series"]), many["linear_fit"])


def figures(lh: pd.DataFrame | None, anomaly_example: dict | None, forecast_example: dict | None, profile: str) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    FIGURES.mkdir(parents=True, exist_ok=True)
    made = []
    suffix = "" if profile == "quick" else f"_{profile}"
    if lh is not None:
        part = lh[(lh["dataset"] == "ETTh1") & (lh["trainable_parameters"] > 0)]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        colors = plt.cm.tab20(np.linspace(0, 1, 20))
        markers = "osD^v<>ph*X"
        for i, method in enumerate(_order(part["method"].unique())):
            m = part[part["method"] == method].groupby("horizon")[["trainable_parameters", "mse"]].mean()
            ax.plot(m["trainable_parameters"], m["mse"], "-", marker=markers[i % len(markers)], color=colors[i % 20],
                    label=method, ms=5, lw=2.5 if method == "TRACE" else 1.2)
        ax.set_xscale("log")
        ax.set_xlabel("trainable parameters (log)")
        ax.set_ylabel("test MSE (ETTh1; one point per horizon)")
        ax.legend(fontsize=7)
        ax.set_title(f"Accuracy vs trainable parameters ({profile} profile)")
        fig.tight_layout()
        fig.savefig(FIGURES / f"accuracy_vs_parameters{suffix}.png", dpi=120)
        plt.close(fig)
        made.append(f"accuracy_vs_parameters{suffix}.png")

        part = lh[(lh["dataset"] == "ETTh1") & (lh["horizon"] == 96) & lh["fit_seconds"].notna()]
        if not part.empty:
            order = _order(part["method"].unique())
            secs = [part[part.method == m]["fit_seconds"].median() for m in order]
            fig, ax = plt.subplots(figsize=(7, 4))
            ax.barh(order[::-1], secs[::-1])
            ax.set_xlabel("fit wall time, s (ETTh1, H = 96)")
            ax.set_title(f"Fit time per method ({profile} profile, same machine)")
            fig.tight_layout()
            fig.savefig(FIGURES / f"fit_time{suffix}.png", dpi=120)
            plt.close(fig)
            made.append(f"fit_time{suffix}.png")
    if forecast_example:
        e = forecast_example
        hist = np.array(e["history"])
        t_hist = np.arange(-len(hist), 0)
        t_fut = np.arange(e["horizon"])
        fig, ax = plt.subplots(figsize=(8, 3.5))
        ax.plot(t_hist, hist, color="0.4", label="history")
        ax.plot(t_fut, e["truth"], color="k", label="truth")
        ax.plot(t_fut, e["TRACE"], label="TRACE")
        ax.plot(t_fut, e["seasonal naive (24)"], "--", label="seasonal naive (24)")
        ax.axvline(0, color="0.7", lw=0.8)
        ax.set_title(f"{e['dataset']} {e['channel']}, last test window, H = {e['horizon']} (standardised)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(FIGURES / "forecast_example.png", dpi=120)
        plt.close(fig)
        made.append("forecast_example.png")
    if anomaly_example:
        e = anomaly_example
        pool = e["pool"]
        t = np.arange(len(e["values"])) * pool
        methods = [m for m in ("TRACE", "zero-shot reconstruction", "PyOD IForest (windows)", "Darts KMeansScorer") if m in e]
        fig, axes = plt.subplots(1 + len(methods), 1, figsize=(9, 1.6 * (1 + len(methods))), sharex=True)
        axes[0].plot(t, e["values"], lw=0.5, color="k")
        axes[0].set_title(f"{e['series']} (every {pool} steps; training prefix shaded, anomaly in red)", fontsize=9)
        for ax in axes:
            ax.axvspan(0, e["train_end"], color="0.9")
            ax.axvspan(e["begin"], e["end"], color="red", alpha=0.3)
        for ax, m in zip(axes[1:], methods, strict=True):
            ax.plot(t, e[m], lw=0.6)
            ax.set_ylabel(m, fontsize=7)
        fig.tight_layout()
        fig.savefig(FIGURES / "anomaly_scores.png", dpi=120)
        plt.close(fig)
        made.append("anomaly_scores.png")
    return made


# ------------------------------------------------------------------ the v4 campaign's table
# ``python -m benchmarks.report --campaign 12 13 ... 24`` prints the model card's "The fine-tuned
# cells, leg by leg" from the committed files alone: v3 from ``data_size.json``, leg N from
# ``data_size_backbone_v4_legN.json`` (``benchmarks.data_size`` on the small-series datasets with
# ``--embedded`` the leg's weights); ``NAME=FILE`` adds another column. A cell is the default
# ``TraceForecaster()``'s mean over seeds; ``+`` / ``−``: better / worse than v3 beyond the larger
# of the two seed spreads (half the range), no mark a tie.
_ILI, _M4, _SHORT = "ILI (L = 104)", "M4 Hourly", "short series"
CAMPAIGN_CELLS = {  # label -> (dataset, fraction or short series' name, horizon or None)
    **{f"ILI, {round(f * 100)} %, H = {h}": (_ILI, f, h) for f in (0.25, 1.0) for h in (24, 36, 48, 60)},
    "M4 Hourly, 10 %": (_M4, 0.1, 48), "M4 Hourly, 100 %": (_M4, 1.0, 48),
    "US real GDP": (_SHORT, "US real GDP (quarterly)", None), "airline": (_SHORT, "airline", None),
    "lynx": (_SHORT, "lynx", None), "shampoo sales": (_SHORT, "shampoo_sales", None),
}
CAMPAIGN_METRIC = {_ILI: "mse", _M4: "owa", _SHORT: "mase"}


def campaign_leg_file(leg: int | str) -> Path:
    """Leg ``leg``'s committed check on the small-series cells."""
    return RESULTS / f"data_size_backbone_v4_leg{leg}.json"


def campaign_cells(path: Path) -> dict[str, np.ndarray]:
    """Each cell's per-seed scores of ``TRACE (defaults)`` in one result file."""
    rows = [r for r in load(path)["rows"] if r["method"] == "TRACE (defaults)"]
    return {label: np.array([r[CAMPAIGN_METRIC[data]] for r in rows if r["dataset"] == data and r["fraction"] == fraction
                             and (horizon is None or r["horizon"] == horizon)])
            for label, (data, fraction, horizon) in CAMPAIGN_CELLS.items()}


def campaign_mark(scores: np.ndarray, baseline: np.ndarray) -> str:
    """``+`` / ``−`` where the means differ by more than the larger seed spread, else ``""``."""
    spread = max(np.ptp(scores), np.ptp(baseline)) / 2
    difference = scores.mean() - baseline.mean()
    return "+" if difference < -spread else "−" if difference > spread else ""


def campaign_table(columns: dict[str, Path], baseline: Path = RESULTS / "data_size.json") -> str:
    """The Markdown table: a row per cell, v3 then a column per file, and the tallies."""
    base, legs = campaign_cells(baseline), {name: campaign_cells(path) for name, path in columns.items()}
    tallies = {name: {"+": 0, "": 0, "−": 0} for name in legs}
    rows = []
    for label in CAMPAIGN_CELLS:
        row = [label, f"{base[label].mean():.3f}"]
        for name, scores in legs.items():
            sign = campaign_mark(scores[label], base[label])
            tallies[name][sign] += 1
            row.append(f"{scores[label].mean():.3f} {sign}".rstrip())
        rows.append(row)
    rows.append(["better / tied / worse", "–", *(f"{t['+']}/{t['']}/{t['−']}" for t in tallies.values())])
    return _table(["cell", "v3", *legs], rows)


INTRO = """# Benchmarks

Generated by `python -m benchmarks.report --profile {profile}` from the raw results in
`benchmarks/results/*_{profile}.json`, which `python -m benchmarks.run --profile {profile}` writes.
Do not edit this page by hand.

Every method runs on the **same embedded backbone** (`trace-moment-tiny`, 0.66 M parameters)
and the same data, in one process per suite. Ratios compare runs from that process.
The protocols and their reasons are in `benchmarks/long_horizon.py`, `benchmarks/m4.py` and
`benchmarks/anomaly.py`.

**Profile `{profile}`.** {profile_text}

Environment: {env}
"""
PROFILE_TEXT = {
    "quick": "One seed (0). Each TRACE-family fit trains 1 epoch on a random subset of 512 windows, after the "
             "closed-form head start on up to 8,192 windows. Long-horizon metrics are computed over every 4th test "
             "origin, all channels. Darts NLinear/DLinear train 10 epochs on every training window and keep the best "
             "validation epoch. sktime's MomentFMForecaster trains 1 epoch on every training window (its own loop). "
             "Anomaly detectors run at their defaults (TRACE: 1 epoch on up to 1,024 windows); NAB uses every "
             "series with anomalies (52); sktime's MomentFMAnomalyDetector (about 400 points/s) is skipped by the "
             "quick suite; `--methods` runs it and merges its rows (its last run, with backbone v1, is quoted in the notes). Measured duration on the 2 cores of the environment below: {durations}.",
    "standard": "Seeds 0, 1 and 2 (mean ± std over seeds; deterministic baselines run once). Every TRACE-family "
                "fit uses the package's default budget (1 epoch on up to 1,024 windows after the closed-form head "
                "start on up to 8,192), the methods the targets compare plus PEFT LoRA and linear probing "
                "(full fine-tuning and DLinear are in the quick profile), every test window (stride 1). Darts NLinear: 10 epochs, best "
                "validation epoch. RevIN linear: closed form on every training and validation window. Suites: "
                "long-horizon, M4 Hourly and the small-data suite (anomaly detection stays in the quick profile). "
                "Measured duration on the 2 cores of the environment below: {durations}.",
    "full": "Seeds 0, 1 and 2 (mean ± std). Every training window, 5 epochs, every test origin, every NAB series.",
    "backbone": "The standard protocol (the package's default budget, every test window) for what the embedded "
                "backbone moves: TRACE fine-tuned (seed 0) and zero-shot, with the deterministic baselines (seasonal "
                "naive, RevIN linear, Naive2), on the long-horizon data sets and M4 Hourly. Measured duration on 2 CPU "
                "cores: {durations}.",
}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--campaign", nargs="+", metavar="LEG",
                        help="print the v4 campaign's leg-by-leg table for these legs (or NAME=FILE) and stop")
    args = parser.parse_args(argv)
    if args.campaign:
        print(campaign_table({name: Path(path) for name, path in (
            item.split("=", 1) if "=" in item else (f"leg {item}", campaign_leg_file(item))
            for item in args.campaign)}))
        return
    p = args.profile
    parts, env = [], None
    lh = _load("long_horizon", p)
    if lh is not None:
        env = lh[1]
        shared = [f"{k}: {note}" for k, (_, note) in durations_of(p).items() if note]
        caveat = (f"**These timings are not a cost measurement**: the run shared its cores ({'; '.join(shared)}). "
                  "`benchmarks/results/cpu_speed.json` times the defaults on an idle machine.") if shared else None
        elsewhere = other_machines("long_horizon", p)
        parts += ["## Long-horizon forecasting", elsewhere, long_horizon_section(lh[0]), caveat,
                  cost_section(lh[0], one_machine=elsewhere is None)]
    m4 = _load("m4", p)
    if m4 is not None:
        parts += ["## Short-horizon forecasting", ran_elsewhere(env, m4[1]), m4_section(m4[0])]
        env = env or m4[1]
    an = _load("anomaly", p)
    if an is not None:
        env = env or an[1]
        parts += ["## Anomaly detection", anomaly_section(an[0])]
    small = _load("small_data", p)
    if p == "quick":
        choice = anomaly_choice_section()
        if choice:
            parts.append(choice)
        recipe = recipe_section()
        if recipe:
            parts.append(recipe)
        short = (small_data_section(small[0], "python -m benchmarks.run --profile quick --suite small_data")
                 if small is not None else None)
        parts += [head_start_section(), backbone_ablation_section(), dsic_ablation_section(), short, scaling_section()]
    else:
        if small is not None:
            elsewhere = ran_elsewhere(env, small[1])
            parts.append(small_data_section(small[0], f"python -m benchmarks.run --profile {p} --suite small_data")
                         + (f"\n\n{elsewhere}" if elsewhere else ""))
        parts.append(targets_section(None if lh is None else lh[0], None if m4 is None else m4[0],
                                     None if small is None else small[0]))
    made = figures(None if lh is None else lh[0], (_record(f"anomaly_{p}.json") or {}).get("example"),
                   (_record(f"examples_{p}.json") or {}).get("example"), p)
    if made:
        parts += ["## Figures", "\n\n".join(f"![{m}](figures/{m})" for m in made)]
    if p == "quick":
        section_figures()
    env_text = ", ".join(f"{k} {v}" for k, v in (env or {}).items())
    durations = durations_of(p)
    total = sum(v for v, _ in durations.values())
    duration_text = (", ".join(f"{k} {v / 60:.1f} min" + (f" ({note})" if note else "")
                               for k, (v, note) in durations.items())
                     + f"; {total / 60:.0f} min in all") if durations else "not recorded"
    page = INTRO.format(profile=p, profile_text=PROFILE_TEXT.get(p, "").format(durations=duration_text), env=env_text) + "\n" + "\n\n".join(
        x for x in parts if x) + "\n"
    stem = "benchmarks" if p == "quick" else f"benchmarks_{p}"
    notes = DOCS / f"{stem}_notes.md"
    if notes.exists():
        page += "\n" + notes.read_text()
    (DOCS / f"{stem}.md").write_text(page)
    print(f"wrote {DOCS / (stem + '.md')} and {len(made)} figures")


if __name__ == "__main__":
    main()
