"""Gated DSIC's kept set and test MSE on ETTh1 (H = 96), same settings in either version of the package.

``python -m benchmarks.dsic_selection LABEL OUT.json`` (run from a checkout of each version);
the committed ``benchmarks/results/dsic_kept_sets.json`` holds both runs.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from trace_forecast import TraceForecaster
from trace_forecast.datasets import load_etth1, rolling_windows, standard_split
from trace_forecast.metrics import mse


def main(label: str, out_path: str) -> list[dict]:
    split = standard_split(load_etth1(), 512)
    hist, fut = [], []
    for column in split.test.columns:
        h, f = rolling_windows(split.test[column].to_numpy(np.float32), 512, 96)
        hist.append(h[::4])
        fut.append(f[::4])
    hist, fut = np.concatenate(hist), np.concatenate(fut)
    out = []
    for seed in (0, 1):
        forecaster = TraceForecaster(context_length=512, max_epochs=1, max_windows=1024, batch_size=32,
                                     random_state=seed)
        start = time.perf_counter()
        forecaster.fit(split.train, fh=np.arange(1, 97))
        fit = time.perf_counter() - start
        selected = forecaster.get_fitted_params()["selected_modules"]
        out.append({"label": label, "seed": seed, "fit_seconds": fit,
                    "mse": float(mse(fut, forecaster.predict_histories(list(hist)))),
                    "kept": selected.loc[selected["kept"], "module"].tolist()})
        print(out[-1], flush=True)
    with open(out_path, "w") as fh:
        json.dump(out, fh, indent=1)
    return out


if __name__ == "__main__":
    main(*sys.argv[1:3])
