"""Torch threads in pool workers: never more threads than cores across the pool.

Every torch process uses all cores by default. When sktime's ``evaluate`` (or any joblib,
multiprocessing or dask pool) runs fits in several worker processes, each worker would run
as many threads as there are cores, and the oversubscribed threads spin: on 2 cores, two
workers with 2 threads each made every fit 2-4× slower than running the folds one by one.

joblib's ``loky`` backend already prevents this (it sets ``OMP_NUM_THREADS`` to
``cores // n_jobs`` in its workers, and torch follows it); its ``multiprocessing`` backend,
``multiprocessing.Pool`` and dask do not. :func:`limit_worker_threads`, called when a fit or
a prediction starts, gives a worker process ``cores // workers`` torch threads, where
``workers`` is the number of processes its parent has started (read from ``/proc`` on
Linux; 1 thread per worker where that is unavailable). An explicit ``OMP_NUM_THREADS``
wins, and the main process is never changed.

Forked workers are worse than slow: a process forked after torch has used its OpenMP
thread pool (any fit or prediction) deadlocks at its first multi-threaded operation,
because the pool's threads do not survive the fork (measured: ``evaluate(...,
backend="multiprocessing")`` after one fit in the parent hung until killed). Once this
module is imported, every forked child therefore starts with one torch thread, before it
can run anything (``os.register_at_fork``); one thread per forked worker is also the
share that avoids oversubscription when there are as many workers as cores.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import torch

_done = False
_forked = False


def _one_thread_after_fork() -> None:
    """In a forked child: one torch thread, before any operation can touch the dead pool."""
    global _forked, _done
    _forked, _done = True, True
    torch.set_num_threads(1)


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_one_thread_after_fork)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def sibling_workers() -> int | None:
    """Processes started by this process's parent (this one included), or ``None`` where
    the platform does not say (Linux: ``/proc/<ppid>/task/*/children``)."""
    task_dir = Path(f"/proc/{os.getppid()}/task")
    try:
        children = {pid for task in task_dir.iterdir() for pid in (task / "children").read_text().split()}
    except OSError:
        return None
    return len(children) or None


def worker_threads() -> int | None:
    """Torch threads for this process if it is a pool worker that nobody configured, else ``None``."""
    if _forked:
        return 1
    if multiprocessing.parent_process() is None or "OMP_NUM_THREADS" in os.environ:
        return None
    workers = sibling_workers()
    cores = available_cores()
    return max(1, cores // workers) if workers else 1


def limit_worker_threads() -> None:
    """In a pool worker, lower torch's thread count to its share of the cores (once per
    process; never raises it, never touches the main process)."""
    global _done
    if _done:
        return
    _done = True
    threads = worker_threads()
    if threads is not None and threads < torch.get_num_threads():
        torch.set_num_threads(threads)
