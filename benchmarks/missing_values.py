"""Forecasting with missing values: the model's own mask against interpolate-then-forecast.

``python -m benchmarks.missing_values`` runs the settings into ``results/missing_values.json``
(one row per setting, method and seed) and writes ``docs/benchmarks_missing_values.md``
(``--report``: from that file alone).

Protocol:

- **ETTh1**, the standard split, L = 512, H = 96, all 7 channels, every ``--test-stride``-th
  test window (default 5).
- **Settings**: complete data; 10 % and 30 % of the steps missing at random; missing runs of
  24 and of 168 steps (runs placed at random until 10 % of each channel is missing). The
  same missing steps (one draw per setting, seed 0) in the training rows *and* in the test
  split, so test contexts have gaps too; errors are scored on observed targets only, in the
  train-standardised units. **glitches**: 0.2 % of the steps at random hold ``-9999`` (a
  common placeholder for a failed reading) instead of a gap; there "interpolated" means the
  user found them, removed them and interpolated (the best case), and two more arms read
  them as values (:data:`trace_forecast.backbone.glitches.GLITCH_SIGMAS` set to infinity: the
  package before it read glitches as missing steps).
- **Spiky real series** (``--settings spiky``): the rule on real extremes, not planted ones.
  NAB's real series and its anomaly-free artificial ones with at least 760 values, 8
  forecast origins spread over each one's second half, zero-shot, L = 512, H = 48; the error
  is the MAE over the context's mean absolute step (a MASE), glitches read as missing or as
  values. Nothing was chosen on these series: the threshold comes from the variance argument
  in :mod:`trace_forecast.backbone.glitches`. ``--settings where`` counts the windows of
  ETTh1, ILI and M4 Hourly (context then target) that hold a glitch at all.
- **Missing last values** (``--settings recent``): complete training rows, and each test
  context's last 0, 1, 3 or 6 values missing (a not-yet-reported reading): the fine-tuned
  default (one fit per seed, every gap length forecast from it) and zero-shot, each fed the
  gaps or the context with its last observed value carried forward (what a user would fill).
- **Arms**: ``TraceForecaster()`` at its defaults fed the series with its gaps (the model's
  own mask); the same after linear interpolation of the training rows and of each test
  context on its own (no value from after the forecast origin; gaps at a context's ends
  take the nearest value); Darts NLinear (paper configuration, as in
  ``benchmarks.data_size``) after the same interpolation; TRACE zero-shot with the gaps,
  after interpolation, and with every gapped patch hidden (``max_bridged_gap = 0``, the
  design ablation of :mod:`trace_forecast.backbone.missing`). Fine-tuned arms run 3 seeds.
"""

from __future__ import annotations

import contextlib

import numpy as np
import pandas as pd

import trace_forecast.backbone.glitches as glitch_rule
from benchmarks.data_size import darts_forecasts, long_horizon_split, trace_forecasts
from benchmarks.harness import Record, main, mean_std_table, panel_windows
from benchmarks.harness import setting as design_constant

KEY = ("setting", "method", "seed")
PAGE = "benchmarks_missing_values.md"
LOOKBACK, HORIZON = 512, 96
SEEDS = (0, 1, 2)
SETTINGS = ("complete", "10 % at random", "30 % at random", "runs of 24", "runs of 168", "glitches")
METHODS = ("TRACE (gaps)", "TRACE (interpolated)", "Darts NLinear (interpolated)",
           "TRACE zero-shot (gaps)", "TRACE zero-shot (interpolated)", "TRACE zero-shot (every gapped patch hidden)",
           "TRACE (glitches read as values)", "TRACE zero-shot (glitches read as values)")
GLITCH, GLITCH_SHARE = -9999.0, 0.002


def missing_mask(shape: tuple[int, int], setting: str, seed: int = 0) -> np.ndarray:
    """Boolean ``[T, C]``: which steps ``setting`` removes."""
    rng = np.random.default_rng(seed)
    if setting == "complete":
        return np.zeros(shape, dtype=bool)
    if setting.endswith("at random") or setting == "glitches":
        return rng.random(shape) < (GLITCH_SHARE if setting == "glitches" else float(setting.split()[0]) / 100)
    run = int(setting.split()[-1])
    mask = np.zeros(shape, dtype=bool)
    for c in range(shape[1]):
        while mask[:, c].mean() < 0.1:
            start = rng.integers(0, shape[0] - run)
            mask[start : start + run, c] = True
    return mask


def interpolate(values: np.ndarray) -> np.ndarray:
    """Linear interpolation along axis 0 (each column), the ends filled with the nearest value."""
    frame = pd.DataFrame(values)
    return frame.interpolate(limit_direction="both").to_numpy(values.dtype)


def zero_shot(histories: list[np.ndarray], bridge: bool = True, horizon: int = HORIZON) -> np.ndarray:
    """Zero-shot forecasts of univariate ``histories`` (``bridge=False``: every patch with a
    missing step hidden)."""
    from trace_forecast import TraceForecaster

    forecaster = TraceForecaster(fit_strategy="zero-shot", context_length=LOOKBACK)
    forecaster.fit(pd.DataFrame({"y": np.sin(np.arange(LOOKBACK + horizon) / 4.0)}), fh=np.arange(1, horizon + 1))
    backbone = forecaster.network_.backbone
    backbone.max_bridged_gap = None if bridge else 0
    try:
        return forecaster.predict_histories(histories)
    finally:
        backbone.max_bridged_gap = None


def glitches_read_as_values() -> contextlib.AbstractContextManager:
    """The ablation: no value is a glitch (:mod:`trace_forecast.backbone.glitches`)."""
    return design_constant(glitch_rule, "GLITCH_SIGMAS", float("inf"))


def setting_cell(setting: str, stride: int, seeds, record: Record) -> None:
    """Every arm on one setting."""
    split = long_horizon_split("ETTh1")
    train = split.train.to_numpy(np.float32)
    test = split.test.to_numpy(np.float32)
    gaps = missing_mask((len(train) + len(test), train.shape[1]), setting)
    glitches = setting == "glitches"
    fill = GLITCH if glitches else np.nan
    train, removed = np.where(gaps[: len(train)], fill, train), np.where(gaps[: len(train)], np.nan, train)
    test, test_removed = np.where(gaps[len(train):], fill, test), np.where(gaps[len(train):], np.nan, test)
    hist, fut = panel_windows(test, LOOKBACK, HORIZON, stride)  # [n, L, C], [n, H, C]
    filled_hist = np.stack([interpolate(h) for h in panel_windows(test_removed, LOOKBACK, HORIZON, stride)[0]])
    if glitches:
        fut = np.where(fut == GLITCH, np.nan, fut)  # a glitch is not a value to forecast
    n, _, channels = hist.shape
    univariate = lambda h: list(h.transpose(0, 2, 1).reshape(-1, LOOKBACK))  # noqa: E731  (channel-major per window)
    truth = fut.transpose(0, 2, 1).reshape(-1, HORIZON)
    base = {"dataset": "ETTh1", "setting": setting, "horizon": HORIZON, "test_windows": n * channels,
            "missing_share": float(np.isnan(removed).mean()), "test_stride": stride}

    def score(method: str, seed, pred: np.ndarray, extra: dict | None = None) -> None:
        observed = np.isfinite(truth)
        err = (pred - truth)[observed]
        record.add({**base, "method": method, "seed": seed, "mse": float(np.mean(err ** 2)),
                    "mae": float(np.mean(np.abs(err))), **(extra or {})})

    def todo(method: str, seed) -> bool:
        return not record.done({**base, "method": method, "seed": seed})

    frame = pd.DataFrame(train, columns=split.train.columns)
    for seed in seeds:
        if todo("TRACE (gaps)", seed):
            pred, extra = trace_forecasts("TRACE (defaults)", seed, frame, HORIZON, LOOKBACK, univariate(hist))
            score("TRACE (gaps)", seed, pred, extra)
        if glitches and todo("TRACE (glitches read as values)", seed):
            with glitches_read_as_values():
                pred, extra = trace_forecasts("TRACE (defaults)", seed, frame, HORIZON, LOOKBACK, univariate(hist))
            score("TRACE (glitches read as values)", seed, pred, extra)
        if todo("TRACE (interpolated)", seed):
            filled = pd.DataFrame(interpolate(removed), columns=split.train.columns)
            pred, extra = trace_forecasts("TRACE (defaults)", seed, filled, HORIZON, LOOKBACK, univariate(filled_hist))
            score("TRACE (interpolated)", seed, pred, extra)
        if todo("Darts NLinear (interpolated)", seed):
            pred, extra = darts_forecasts("Darts NLinear", seed, [interpolate(removed)], HORIZON, LOOKBACK, list(filled_hist))
            score("Darts NLinear (interpolated)", seed, pred.transpose(0, 2, 1).reshape(-1, HORIZON), extra)
    for method, histories, bridge in (("TRACE zero-shot (gaps)", hist, True),
                                      ("TRACE zero-shot (interpolated)", filled_hist, True),
                                      ("TRACE zero-shot (every gapped patch hidden)", hist, False)):
        if todo(method, None) and (setting != "complete" or bridge) and not (glitches and not bridge):
            score(method, None, zero_shot(univariate(histories), bridge))
    if glitches and todo("TRACE zero-shot (glitches read as values)", None):
        with glitches_read_as_values():
            score("TRACE zero-shot (glitches read as values)", None, zero_shot(univariate(hist)))


RECENT = (0, 1, 3, 6)  # missing last values of each test context


def recent_gaps(stride: int, seeds, record: Record) -> None:
    """Every test context with its last ``k`` values missing, fed as gaps or carried forward."""
    split = long_horizon_split("ETTh1")
    hist, fut = panel_windows(split.test.to_numpy(np.float32), LOOKBACK, HORIZON, stride)
    truth = fut.transpose(0, 2, 1).reshape(-1, HORIZON)
    contexts = list(hist.transpose(0, 2, 1).reshape(-1, LOOKBACK))
    variants = {}  # (k, fed) -> univariate histories
    for k in RECENT:
        gappy = [np.r_[c[: LOOKBACK - k], np.full(k, np.nan, np.float32)] for c in contexts]
        variants[(k, "gaps")] = gappy
        if k:
            variants[(k, "carried forward")] = [np.r_[c[: LOOKBACK - k], np.full(k, c[LOOKBACK - k - 1])] for c in contexts]

    def score(method: str, seed, pred: np.ndarray, extra: dict | None = None) -> None:
        for i, (k, fed) in enumerate(variants):
            part = pred[i * len(contexts) : (i + 1) * len(contexts)]
            record.add({"dataset": "ETTh1", "setting": f"missing last {k}", "horizon": HORIZON, "test_stride": stride,
                        "test_windows": len(contexts), "method": f"{method} ({fed})", "seed": seed,
                        "mse": float(np.mean((part - truth) ** 2)), **(extra or {})})

    every = [h for histories in variants.values() for h in histories]
    frame = pd.DataFrame(split.train.to_numpy(np.float32), columns=split.train.columns)
    for seed in seeds:
        if not record.done({"setting": "missing last 1", "method": "TRACE (gaps)", "seed": seed}):
            pred, extra = trace_forecasts("TRACE (defaults)", seed, frame, HORIZON, LOOKBACK, every)
            score("TRACE", seed, pred, extra)
    if not record.done({"setting": "missing last 1", "method": "TRACE zero-shot (gaps)", "seed": None}):
        score("TRACE zero-shot", None, zero_shot(every))


def recent_table(rows: list[dict]) -> list[str]:
    """Test MSE by missing last values (columns) and arm (rows), mean ± std over seeds."""
    frame = pd.DataFrame([r for r in rows if r["setting"].startswith("missing last")])
    if frame.empty:
        return []
    stats = frame.groupby(["method", "setting"], sort=False)["mse"].agg(["mean", "std", "count"])
    return mean_std_table(stats, "arm", list(dict.fromkeys(frame["method"])),
                          [f"missing last {k}" for k in RECENT], 4)


# ---------------------------------------------------------------------------- report
def summary(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame([r for r in rows if r["setting"] in SETTINGS], columns=["setting", "method", "mse"])
    return frame.groupby(["setting", "method"], sort=False)["mse"].agg(["mean", "std", "count"])


def spiky_series(record: Record) -> None:
    """Zero-shot on NAB's series, glitches read as missing steps or as values (module docstring)."""
    from trace_forecast.datasets import shared_data_dir
    from trace_forecast.metrics import mase

    horizon, contexts, futures = 48, [], []
    for path in sorted((shared_data_dir() / "anomaly" / "NAB").glob("*/*.csv")):
        if not (path.parent.name.startswith("real") or path.parent.name == "artificialNoAnomaly"):
            continue
        values = pd.read_csv(path)["value"].to_numpy(np.float64)
        if len(values) >= LOOKBACK + horizon + 200:
            for origin in np.linspace(len(values) // 2, len(values) - horizon, 8).astype(int):
                if np.ptp(values[origin - LOOKBACK : origin]) > 0:  # a flat line has no MASE unit
                    contexts.append(values[origin - LOOKBACK : origin])
                    futures.append(values[origin : origin + horizon])
    errors = {}
    for method in ("TRACE zero-shot (gaps)", "TRACE zero-shot (glitches read as values)"):
        with glitches_read_as_values() if "values" in method else contextlib.nullcontext():
            pred = zero_shot(contexts, horizon=horizon)
        errors[method] = np.array([mase(f, p, c, 1) for f, p, c in zip(futures, pred, contexts, strict=True)])
    own, read = errors.values()
    changed = np.abs(own - read) > 1e-9 * read
    for method, err in errors.items():
        record.add({"dataset": "NAB", "setting": "spiky", "method": method, "seed": None, "mase": float(err.mean()),
                    "windows": len(contexts), "windows_changed": int(changed.sum()),
                    "better": int((own < read)[changed].sum()), "worse": int((own > read)[changed].sum())})


def glitch_counts(record: Record) -> None:
    """How many windows of the forecasting benchmarks' data hold a glitch (context then target)."""
    import torch

    from benchmarks.long_horizon import load_ili
    from benchmarks.m4 import load_m4_hourly
    from trace_forecast.backbone.glitches import glitch_steps
    from trace_forecast.datasets import load_etth1

    data = {"ETTh1": [c.to_numpy(np.float32) for _, c in load_etth1().items()],
            "ILI": [c.to_numpy(np.float32) for _, c in load_ili().items()], "M4 Hourly": load_m4_hourly()[0]}
    for name, length in (("ETTh1", 512 + 720), ("ETTh1", 336 + 96), ("ILI", 104 + 60), ("ILI", 512 + 60),
                         ("M4 Hourly", 512 + 48)):
        windows = hit = 0
        for series in data[name]:
            if len(series) >= length:
                w = torch.as_tensor(series, dtype=torch.float32).unfold(0, length, 1)[:, None, :]
                windows += len(w)
                hit += int(glitch_steps(w, torch.ones(len(w), length), 7).any(-1).sum())
        record.add({"dataset": name, "setting": "where", "method": f"windows of {length} steps", "seed": None,
                    "windows": windows, "with_glitch": hit})


def page(result: dict) -> str:
    stats = summary(result["rows"])
    methods = [m for m in METHODS if m in stats.index.get_level_values(1)]
    lines = ["# Missing values: the model's own mask against interpolation",
             "Protocol: the module docstring of `benchmarks/missing_values.py`; in short, ETTh1 standard split, "
             "L = 512, H = 96, the same gaps in the training rows and in the test split, MSE on observed targets "
             "(train-standardised), mean ± std over 3 seeds for the fine-tuned arms.", ""
             ] + mean_std_table(stats, "setting", SETTINGS, methods, 4)
    lines += ["", "## Against the targets", ""]
    complete = stats.loc[("complete", "TRACE (gaps)"), "mean"] if ("complete", "TRACE (gaps)") in stats.index else None
    for setting in SETTINGS[1:]:
        if (setting, "TRACE (gaps)") not in stats.index or complete is None:
            continue
        own = stats.loc[(setting, "TRACE (gaps)"), "mean"]
        limit = 0.03 if setting == "10 % at random" else 0.10
        interp = stats.loc[(setting, "TRACE (interpolated)"), "mean"] if (setting, "TRACE (interpolated)") in stats.index else np.nan
        nlin = (stats.loc[(setting, "Darts NLinear (interpolated)"), "mean"]
                if (setting, "Darts NLinear (interpolated)") in stats.index else np.nan)
        what = "glitches" if setting == "glitches" else "gaps"
        lines.append(f"- **{setting}**: TRACE with the {what} {own:.4f}, {100 * (own / complete - 1):+.1f} % against "
                     f"complete data ({complete:.4f}; target within {100 * limit:.0f} %: "
                     f"{'met' if own <= complete * (1 + limit) else 'missed'}); against TRACE after interpolation "
                     f"{interp:.4f} ({100 * (own / interp - 1):+.1f} %) and NLinear after interpolation {nlin:.4f} "
                     f"({100 * (own / nlin - 1):+.1f} %).")
        if (setting, "TRACE (glitches read as values)") in stats.index:
            read = stats.loc[(setting, "TRACE (glitches read as values)"), "mean"]
            lines.append(f"  Read as values (the package before it read glitches as missing steps): {read:.4f}.")
    recent = recent_table(result["rows"])
    if recent:
        lines += ["", "## Missing last values", "",
                  "Complete training rows; each test context's last values missing (a reading not yet in). "
                  "Test MSE, mean ± std over 3 seeds for the fine-tuned arm; \"carried forward\" fills the gap "
                  "with the last observed value before forecasting.", ""] + recent
    counts = [r for r in result["rows"] if r["setting"] == "where"]
    if counts:
        lines += ["", "## Where the benchmarks' data hold glitches", "",
                  "Windows (context then target, every start) with at least one glitch: " + "; ".join(
                      f"{r['dataset']}, {r['method']}: {r['with_glitch']:,} of {r['windows']:,}" for r in counts) + "."]
    spiky = {r["method"]: r for r in result["rows"] if r["setting"] == "spiky"}
    if len(spiky) == 2:
        own, read = spiky["TRACE zero-shot (gaps)"], spiky["TRACE zero-shot (glitches read as values)"]
        lines += ["", "## Spiky real series (NAB, zero-shot, H = 48)", "",
                  f"{own['windows']} windows; the rule changed the forecast in {own['windows_changed']}, better in "
                  f"{own['better']} and worse in {own['worse']}. Mean MASE: {own['mase']:.3f} with glitches read as "
                  f"missing steps, {read['mase']:.3f} read as values."]
    return "\n".join(lines)


def options(parser) -> None:
    parser.add_argument("--settings", nargs="*", default=[*SETTINGS, "recent", "spiky", "where"],
                        choices=[*SETTINGS, "recent", "spiky", "where"])
    parser.add_argument("--seeds", type=int, nargs="*", default=list(SEEDS))
    parser.add_argument("--test-stride", type=int, default=5)


def run(args, record) -> None:
    for setting in args.settings:
        if setting == "spiky":
            if not record.done({"setting": "spiky", "method": "TRACE zero-shot (gaps)", "seed": None}):
                spiky_series(record)
        elif setting == "where":
            glitch_counts(record)
        elif setting == "recent":
            recent_gaps(args.test_stride, args.seeds, record)
        else:
            setting_cell(setting, args.test_stride, args.seeds, record)


if __name__ == "__main__":
    main(__name__)
