"""Which scale makes validation residuals calibrate later months (ETTh1, calibration frozen at fit).

The default forecaster is fitted on ETTh1's training and validation months (seed 0). Its
24-step residuals on the validation windows (every 4th origin, 7 channels) are divided by a
per-window scale, and their quantiles, multiplied by each test window's scale, give
intervals on the test windows (every 8th origin). Scales: the RevIN standard deviation
(what the package uses), none, the mean absolute first or seasonal (24) difference of the
context, the same on its last 96 steps, and the standard deviation of the last 96 steps.

M4 Hourly (``--dataset m4``): one global fit on the 414 training series; the residuals of
every 4th window of each series' last 20 % (its validation part) under each scale give 95 %
and 80 % intervals for the 48 test values, scored with MSIS (seasonality 24) and coverage:
quantiles pooled over all series, or per series (each series' own windows).

``--dataset m4-tuning``: how a panel is calibrated, chosen on M4 Hourly's tuning split
(:func:`m4_tuning`; what ``trace_forecast.tasks.calibration`` implements).

``python -m benchmarks.interval_scaling [--dataset etth1|m4|m4-tuning]`` ->
``benchmarks/results/interval_scaling.json`` (ETTh1), ``interval_scaling_m4.json`` or
``interval_calibration_m4_tuning.json``
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.harness import Record, channel_windows, main
from benchmarks.long_horizon import fit_rows, load_split
from benchmarks.probabilistic import interval_score, msis

H = 24


def context_scales(h: np.ndarray) -> dict[str, np.ndarray]:
    """Per-window scales of histories ``h [n, L]`` (NaN-padded on the left allowed)."""
    d1 = np.nanmean(np.abs(np.diff(h, axis=1)), axis=1)
    d24 = np.nanmean(np.abs(h[:, 24:] - h[:, :-24]), axis=1)
    return {"MAD of first differences": d1, "MAD of seasonal differences (24)": d24}


def m4(record: Record) -> None:
    """The scales on M4 Hourly (module docstring)."""
    from benchmarks.m4 import load_m4_hourly
    from trace_forecast import TraceForecaster
    from trace_forecast.tasks.forecast import predict_normalized

    histories, futures = load_m4_hourly()
    h48 = futures.shape[1]
    frame = pd.concat({i: pd.DataFrame({"y": h}) for i, h in enumerate(histories)}, names=["series", "t"])
    forecaster = TraceForecaster(random_state=0).fit(frame, fh=np.arange(1, h48 + 1))
    ctx, fut, owner = [], [], []
    for i, h in enumerate(histories):
        for o in range(int(len(h) * 0.8), len(h) - h48 + 1, 4):
            ctx.append(h[max(0, o - 512) : o])
            fut.append(h[o : o + h48])
            owner.append(i)
    fut = np.stack(fut)

    def forecast(hs):
        p, m, sd = predict_normalized(forecaster.network_, [x.astype(np.float32) for x in hs])
        return p * sd[:, None] + m[:, None], sd

    def padded(hs):
        return np.stack([np.concatenate([np.full(512 - len(x), np.nan), x]) for x in hs])

    vp, vs = forecast(ctx)
    tp, ts = forecast([h[-512:] for h in histories])
    scales = {"RevIN std (default)": (vs, ts)}
    v_alt, t_alt = context_scales(padded(ctx)), context_scales(padded([h[-512:] for h in histories]))
    scales.update({k: (v_alt[k], t_alt[k]) for k in v_alt})
    owner = np.array(owner)
    for (name, (sv, st)), per_series in [(item, False) for item in scales.items()] + [
            (item, True) for item in scales.items()]:
        r = (fut - vp) / sv[:, None]
        if per_series:  # each series' own validation residuals
            name = f"{name}, per-series quantiles"
            q = {a: np.stack([np.quantile(r[owner == i], a, axis=0) for i in range(len(histories))])
                 for a in (0.025, 0.975, 0.1, 0.9)}
        else:
            q = {a: np.quantile(r, a, axis=0)[None] for a in (0.025, 0.975, 0.1, 0.9)}
        lo95, hi95, lo80, hi80 = (tp + q[a] * st[:, None] for a in (0.025, 0.975, 0.1, 0.9))
        row = {"scale": name,
               "msis_95": float(np.mean([msis(h, y, lo, hi) for h, y, lo, hi
                                         in zip(histories, futures, lo95, hi95, strict=True)])),
               "coverage_80": float(np.mean((futures >= lo80) & (futures <= hi80))),
               "coverage_95": float(np.mean((futures >= lo95) & (futures <= hi95)))}
        record.add(row)
    record.protocol["validation_windows"] = len(ctx)


def m4_tuning(record: Record) -> None:
    """How to calibrate a panel, chosen on M4 Hourly's tuning split: one fit on each series
    minus its last 48 values, residuals of ``m`` windows per series spread over the last 20 %
    of the shortened series, scored on the 48 held-back values (never the test set).
    Quantiles pooled over all series, per series, or pooled after dividing each series'
    residuals by their RMS (``normalised``), whose scale is shrunk in log space toward the
    panel's geometric mean with weight ``m / (m + k)``."""
    from benchmarks.m4 import load_m4_hourly
    from trace_forecast import TraceForecaster
    from trace_forecast.tasks.forecast import predict_normalized

    full, _ = load_m4_hourly()
    h48 = 48
    hists = [h[:-h48] for h in full]
    futs = np.stack([h[-h48:] for h in full])
    frame = pd.concat({i: pd.DataFrame({"y": h}) for i, h in enumerate(hists)}, names=["series", "t"])
    forecaster = TraceForecaster(random_state=0).fit(frame, fh=np.arange(1, h48 + 1))

    def forecast(hs):
        return predict_normalized(forecaster.network_, [x.astype(np.float32) for x in hs])

    tp, tm, ts = forecast([h[-512:] for h in hists])
    ctx, fut, own = [], [], []
    for i, h in enumerate(hists):
        origins = np.arange(int(len(h) * 0.8), len(h) - h48 + 1)
        for o in origins[np.linspace(0, len(origins) - 1, 40).astype(int)]:
            ctx.append(h[max(0, o - 512) : o])
            fut.append(h[o : o + h48])
            own.append(i)
    own = np.array(own)
    vp, vm, vs = forecast(ctx)
    residuals = (np.stack(fut) - vm[:, None]) / vs[:, None] - vp
    n, alphas = len(hists), (0.025, 0.1, 0.9, 0.975)

    def score(name, m, q):
        b = {a: (tp + q[a]) * ts[:, None] + tm[:, None] for a in q}
        row = {"windows_per_series": m, "calibration": name,
               "msis_95": float(np.mean([msis(h, y, lo, hi) for h, y, lo, hi
                                         in zip(hists, futs, b[0.025], b[0.975], strict=True)])),
               "coverage_80": float(np.mean((futs >= b[0.1]) & (futs <= b[0.9]))),
               "coverage_95": float(np.mean((futs >= b[0.025]) & (futs <= b[0.975])))}
        record.add(row)

    for m in (4, 8, 40):
        keep = np.concatenate([np.flatnonzero(own == i)[np.linspace(0, 39, m).astype(int)] for i in range(n)])
        r, o = residuals[keep], own[keep]
        score("pooled", m, {a: np.broadcast_to(np.quantile(r, a, axis=0), (n, h48)) for a in alphas})
        score("per-series quantiles", m, {a: np.stack([np.quantile(r[o == i], a, axis=0) for i in range(n)])
                                          for a in alphas})
        rms = np.sqrt(np.array([np.mean(r[o == i] ** 2) for i in range(n)]))
        for k in (0, 2, 8, 32):
            w = m / (m + k)
            scale = np.exp(w * np.log(rms) + (1 - w) * np.mean(np.log(rms)))
            z = r / scale[o][:, None]
            score(f"normalised, k = {k}", m, {a: scale[:, None] * np.quantile(z, a, axis=0)[None] for a in alphas})
    record.protocol["series"] = n


def etth1(record: Record) -> None:
    from trace_forecast import TraceForecaster
    from trace_forecast.tasks.forecast import predict_normalized

    split = load_split("ETTh1")
    rows, val_share = fit_rows(split)
    vh, vf = channel_windows(split.val, 512, H, 4)
    th, tf = channel_windows(split.test, 512, H, 8)
    forecaster = TraceForecaster(random_state=0, validation_fraction=val_share).fit(rows, fh=np.arange(1, H + 1))

    def forecast(h):
        p, m, s = predict_normalized(forecaster.network_, list(h))
        return p * s[:, None] + m[:, None], s

    vp, vs = forecast(vh)
    tp, ts = forecast(th)
    t_scales = context_scales(th)
    scales = {
        "RevIN std (default)": (vs, ts),
        "none": (np.ones(len(vh)), np.ones(len(th))),
        **{k: (v, t_scales[k]) for k, v in context_scales(vh).items()},
        "MAD of first differences, last 96": (np.abs(np.diff(vh[:, -96:], axis=1)).mean(1),
                                              np.abs(np.diff(th[:, -96:], axis=1)).mean(1)),
        "std of the last 96": (vh[:, -96:].std(1), th[:, -96:].std(1)),
    }
    for name, (sv, st) in scales.items():
        r = (vf - vp) / sv[:, None]
        row = {"scale": name}
        for cov in (0.5, 0.8, 0.95):
            lo, hi = np.quantile(r, [(1 - cov) / 2, (1 + cov) / 2], axis=0)
            low, high = tp + lo * st[:, None], tp + hi * st[:, None]
            row[f"coverage_{int(cov * 100)}"] = float(np.mean((tf >= low) & (tf <= high)))
            row[f"interval_score_{int(cov * 100)}"] = interval_score(tf, low, high, cov)
        record.add(row)
    record.protocol.update(validation_windows=len(vh), test_windows=len(th))


RESULT_NAMES = {"etth1": "interval_scaling", "m4": "interval_scaling_m4", "m4-tuning": "interval_calibration_m4_tuning"}
def options(parser) -> None:
    parser.add_argument("--dataset", choices=tuple(RESULT_NAMES), default="etth1")


def result_name(args) -> str:
    return RESULT_NAMES[args.dataset]


def run(args, record: Record) -> None:
    {"etth1": etth1, "m4": m4, "m4-tuning": m4_tuning}[args.dataset](record)


if __name__ == "__main__":
    main(__name__)
