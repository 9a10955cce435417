"""Parallel back-testing: sktime ``evaluate`` with 2 workers against the sequential run.

The case of the scaling issue: ``evaluate(TraceForecaster(max_epochs=1),
cv=ExpandingWindowSplitter(fh=[1, 2, 3], initial_window=800, step_length=60), y=<the first
1,000 points of ETTh1's OT>, strategy="refit")``, sequentially and with
``backend="multiprocessing"`` and ``backend="loky"`` (``n_jobs=2``), all in one process,
sequential first (as a user who tried one fit before going parallel). Loky runs twice:
its first call starts fresh worker processes, which import the stack and load the backbone;
the second reuses them. Every run must give the sequential run's scores exactly.

``python -m benchmarks.parallel_evaluate`` (about a minute on 2 CPU cores) writes
``benchmarks/results/parallel_evaluate.json``.
"""

from __future__ import annotations

import os
import time

from benchmarks.harness import Record, main

BACKENDS = ("sequential", "multiprocessing", "loky (cold workers)", "loky (warm workers)")


def case():
    from sktime.split import ExpandingWindowSplitter

    from trace_forecast import TraceForecaster
    from trace_forecast.datasets import load_etth1

    y = load_etth1()["OT"].iloc[:1000].reset_index(drop=True)
    cv = ExpandingWindowSplitter(fh=[1, 2, 3], initial_window=800, step_length=60)
    return TraceForecaster(max_epochs=1, random_state=0), cv, y


def run(args, record: Record) -> None:
    from sktime.forecasting.model_evaluation import evaluate

    forecaster, cv, y = case()
    rows = []
    for name in BACKENDS:
        kwargs = {} if name == "sequential" else {"backend": name.split()[0], "backend_params": {"n_jobs": 2}}
        start = time.perf_counter()
        result = evaluate(forecaster, cv=cv, y=y, strategy="refit", **kwargs)
        seconds = time.perf_counter() - start
        scores = result.iloc[:, 0].tolist()
        rows.append({"run": name, "seconds": round(seconds, 2), "folds": len(result), "scores": scores,
                     "fit_seconds_per_fold": result["fit_time"].round(2).tolist()})
    base = rows[0]
    for row in rows:
        row["ratio_to_sequential"] = round(row["seconds"] / base["seconds"], 3)
        row["scores_equal_sequential"] = row["scores"] == base["scores"]
        record.add(row)
    record.protocol.update(case="ETTh1 OT[:1000], ExpandingWindowSplitter(fh=[1,2,3], initial_window=800, "
                                "step_length=60), TraceForecaster(max_epochs=1, random_state=0), strategy='refit', "
                                "n_jobs=2", cores=len(os.sched_getaffinity(0)))


if __name__ == "__main__":
    main(__name__)
