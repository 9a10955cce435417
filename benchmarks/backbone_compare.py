"""Zero-shot, backbone against backbone: should a new embedded backbone ship?

``python -m benchmarks.backbone_compare --backbone v3=None v4=runs/v4`` writes a row per
backbone (named as given) into ``results/backbone_compare.json``:
``TraceForecaster(fit_strategy="zero-shot")`` on ETTh1 at H = 96/192/336/720 (standard
protocol: lookback 512, every test window, MSE on train-standardised values; past 192 steps
the forecast rolls out) and on M4 Hourly (OWA against Naive2). ``--plain`` adds each
backbone's plain zero-shot forecast, without the sign-symmetric average (``docs/design.md``).
``--future-patches auto 12 6`` gives a row for each count of patches predicted a pass
(``"auto"``: as many as pretrained; fewer: more history visible, more passes); ``--split val``
scores ETTh1's validation split instead, where design choices are made (no M4 column).
Held-out pretraining loss per source is ``benchmarks/pretraining_heldout.py``'s job (and each
campaign leg's record).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmarks.harness import Record, channel_windows, main, setting

HORIZONS = (96, 192, 336, 720)


def etth1(backbone, horizon: int, stride: int, future_patches="auto", split_name: str = "test") -> float:
    from benchmarks.long_horizon import load_split
    from trace_forecast import TraceForecaster
    from trace_forecast.metrics import mse

    split = load_split("ETTh1")
    hist, fut = channel_windows(getattr(split, split_name), 512, horizon, stride)
    forecaster = TraceForecaster(fit_strategy="zero-shot", backbone=backbone, future_patches=future_patches,
                                 random_state=0)
    forecaster.fit(split.train.iloc[-2000:], fh=np.arange(1, horizon + 1))  # zero-shot: the fit trains nothing
    return mse(fut, forecaster.predict_histories(list(hist)))


def m4_owa(backbone, future_patches="auto") -> float:
    from benchmarks.m4 import load_m4_hourly, naive2, scores
    from trace_forecast import TraceForecaster
    from trace_forecast.metrics import owa

    histories, futures = load_m4_hourly()
    s2, m2 = scores(histories, futures, np.stack([naive2(h) for h in histories]))
    frame = pd.concat({i: pd.DataFrame({"y": h}) for i, h in enumerate(histories)}, names=["series", "t"])
    forecaster = TraceForecaster(fit_strategy="zero-shot", backbone=backbone, future_patches=future_patches,
                                 random_state=0)
    forecaster.fit(frame, fh=np.arange(1, 49))
    s, m = scores(histories, futures, forecaster.predict_histories(histories))
    return owa(s, m, s2, m2)


KEY = ("backbone",)


def options(parser) -> None:
    parser.add_argument("--backbone", nargs="+", default=["embedded=None"], help="NAME=FOLDER (None: embedded)")
    parser.add_argument("--stride", type=int, default=1, help="every k-th ETTh1 window")
    parser.add_argument("--plain", action="store_true",
                        help="also the plain zero-shot forecast (not averaged with the negated series')")
    parser.add_argument("--future-patches", nargs="+", default=["auto"],
                        help='patches predicted a pass: "auto" and/or integers (one row each)')
    parser.add_argument("--split", choices=("test", "val"), default="test", help="ETTh1's split to score")


def run(args, record: Record) -> None:
    from trace_forecast.heads import reconstruction

    for item in args.backbone:
        name, folder = item.split("=", 1)
        backbone = None if folder == "None" else folder
        for symmetric in (True, False) if args.plain else (True,):
            for patches in [p if p == "auto" else int(p) for p in args.future_patches]:
                label = name if symmetric else f"{name}, plain (not sign-symmetric)"
                label += "" if patches == "auto" else f", {patches} patches a pass"
                with setting(reconstruction, "SIGN_SYMMETRIC_ZERO_SHOT", symmetric):
                    row = {"backbone": label, **{f"ETTh1 H={h}": etth1(backbone, h, args.stride, patches, args.split)
                                                 for h in HORIZONS}}
                    if args.split == "test":
                        row["M4 Hourly OWA"] = m4_owa(backbone, patches)
                    record.add(row)


if __name__ == "__main__":
    main(__name__)
