"""Gated DSIC's kept set and test MSE on ETTh1 (H = 96), same settings in either version of the package.

``python benchmarks/dsic_selection.py LABEL OUT.json`` (run from a checkout of each version);
the committed ``benchmarks/results/dsic_kept_sets.json`` holds both runs.
"""
import json, sys, time
import numpy as np
from trace_forecast import TraceForecaster
from trace_forecast.datasets import load_etth1, standard_split, rolling_windows
from trace_forecast.metrics import mse
split = standard_split(load_etth1(), 512)
hist, fut = [], []
for c in split.test.columns:
    h, f = rolling_windows(split.test[c].to_numpy(np.float32), 512, 96); hist.append(h[::4]); fut.append(f[::4])
hist, fut = np.concatenate(hist), np.concatenate(fut)
out = []
for seed in (0, 1):
    f = TraceForecaster(context_length=512, max_epochs=1, max_windows=1024, batch_size=32, random_state=seed)
    t = time.perf_counter(); f.fit(split.train, fh=np.arange(1, 97)); fit = time.perf_counter() - t
    sel = f.get_fitted_params()["selected_modules"]
    out.append({"label": sys.argv[1], "seed": seed, "fit_seconds": fit, "mse": float(mse(fut, f.predict_histories(list(hist)))),
                "kept": sel.loc[sel["kept"], "module"].tolist()})
    print(out[-1], flush=True)
json.dump(out, open(sys.argv[2], "w"), indent=1)
