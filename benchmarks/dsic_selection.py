"""Gated DSIC's kept set and test MSE on ETTh1 (H = 96), same settings in either version of the package.

``python -m benchmarks.dsic_selection --label before --out benchmarks/results/dsic_kept_sets.json``
in a checkout of the previous version (this ``benchmarks/`` folder copied there), then
``--label after`` here: the rows of both versions in one file.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import Record, channel_windows, main
from benchmarks.long_horizon import load_split

KEY = ("label", "seed")


def options(parser) -> None:
    parser.add_argument("--label", default="after")


def run(args, record: Record) -> None:
    from trace_forecast import TraceForecaster
    from trace_forecast.metrics import mse

    split = load_split("ETTh1")
    hist, fut = channel_windows(split.test, 512, 96, 4)
    for seed in (0, 1):
        forecaster = TraceForecaster(context_length=512, max_epochs=1, max_windows=1024, batch_size=32,
                                     random_state=seed)
        start = time.perf_counter()
        forecaster.fit(split.train, fh=np.arange(1, 97))
        fit = time.perf_counter() - start
        selected = forecaster.get_fitted_params()["selected_modules"]
        record.add({"label": args.label, "seed": seed, "fit_seconds": fit,
                    "mse": float(mse(fut, forecaster.predict_histories(list(hist)))),
                    "kept": selected.loc[selected["kept"], "module"].tolist()})


if __name__ == "__main__":
    main(__name__)
