"""Parallel back-testing: workers share the cores instead of oversubscribing them, forked
workers never deadlock, and parallel ``evaluate`` gives the sequential results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import trace_forecast.engine.threads as threads

ROOT = Path(__file__).resolve().parents[1]


def run_python(code: str, *args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=timeout)


def test_worker_threads_is_the_share_of_the_cores(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "_forked", False)
    monkeypatch.setattr(threads.multiprocessing, "parent_process", lambda: None)
    assert threads.worker_threads() is None  # the main process is left alone
    monkeypatch.setattr(threads.multiprocessing, "parent_process", lambda: object())
    monkeypatch.setattr(threads, "available_cores", lambda: 16)
    monkeypatch.setattr(threads, "sibling_workers", lambda: 4)
    assert threads.worker_threads() == 4
    monkeypatch.setattr(threads, "sibling_workers", lambda: 32)
    assert threads.worker_threads() == 1
    monkeypatch.setattr(threads, "sibling_workers", lambda: None)  # the platform does not say
    assert threads.worker_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")  # the launcher chose (joblib's loky does)
    assert threads.worker_threads() is None


FORKED_POOL = """
import json, os, torch
from joblib import Parallel, delayed
import trace_forecast.engine.threads as threads

def work(_):
    threads.limit_worker_threads()
    a = torch.randn(600, 600)
    float((a @ a).sum())   # a multi-threaded op: deadlocks in a forked child with the parent's pool
    return torch.get_num_threads()

torch.set_num_threads(len(os.sched_getaffinity(0)))
a = torch.randn(1200, 1200)
(a @ a).sum()             # the parent's OpenMP pool is now in use
print(json.dumps({"parent": torch.get_num_threads(),
                  "workers": Parallel(n_jobs=2, backend="multiprocessing")(delayed(work)(i) for i in range(4))}))
"""


def test_forked_workers_run_with_their_share_of_threads_and_do_not_deadlock():
    try:
        done = run_python(FORKED_POOL, timeout=120)
    except subprocess.TimeoutExpired:  # the behaviour this guards against
        pytest.fail("forked torch workers deadlocked")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["workers"] == [1, 1, 1, 1]
    assert result["parent"] == len(os.sched_getaffinity(0))  # the main process keeps its threads


PARALLEL_EVALUATE = """
import importlib.util, json, sys, warnings
import numpy as np, pandas as pd
from sktime.forecasting.model_evaluation import evaluate
from sktime.split import ExpandingWindowSplitter
from trace_forecast import TraceForecaster

if __name__ == "__main__":  # dask's worker processes re-import this file
    warnings.simplefilter("ignore")
    t = np.arange(300)
    y = pd.Series(10 + 3 * np.sin(2 * np.pi * t / 12) + np.random.default_rng(0).normal(0, 0.3, 300))
    forecaster = TraceForecaster(backbone=sys.argv[1], context_length=64, max_epochs=1, max_windows=64, batch_size=16,
                                 random_state=0, dsic_interval=2, dsic_draws=2)
    cv = ExpandingWindowSplitter(fh=[1, 2, 3], initial_window=240, step_length=20)
    scores = {}
    for backend in (None, "multiprocessing", "loky"):
        kwargs = {} if backend is None else {"backend": backend, "backend_params": {"n_jobs": 2}}
        scores[str(backend)] = evaluate(forecaster, cv=cv, y=y, strategy="refit", **kwargs).iloc[:, 0].tolist()
    if importlib.util.find_spec("distributed") is not None:
        import dask
        from dask.distributed import Client, LocalCluster

        # The scaling page's configuration: worker processes with one task and one thread each,
        # forked from this process (loky above already covers fresh interpreters; a spawned
        # dask worker re-imports torch and sktime, about 8 s of the suite for no other check).
        dask.config.set({"distributed.worker.multiprocessing-method": "fork"})
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \\
                Client(cluster):
            scores["dask"] = evaluate(forecaster, cv=cv, y=y, strategy="refit", backend="dask").iloc[:, 0].tolist()
    print(json.dumps(scores))
"""


@pytest.mark.slow
def test_parallel_evaluate_equals_the_sequential_run(tiny_backbone_dir, tmp_path):
    """joblib's multiprocessing and loky backends and dask give the sequential scores (one
    process, one sequential run for all of them)."""
    script = tmp_path / "parallel_evaluate.py"  # a file: dask's worker processes re-import __main__
    script.write_text(textwrap.dedent(PARALLEL_EVALUATE))
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, str(script), str(tiny_backbone_dir)], capture_output=True, text=True,
                          cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    scores = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(scores["None"]) == 3
    assert scores["multiprocessing"] == scores["None"]
    assert scores["loky"] == scores["None"]
    if "dask" in scores:
        assert scores["dask"] == scores["None"]
