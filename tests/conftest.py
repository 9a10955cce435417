"""Shared fixtures: a tiny random backbone written to disk, and the shared data folder."""

from __future__ import annotations

import logging
import multiprocessing
import os
import warnings
from pathlib import Path

import pytest
import torch

DATA_DIR = Path(os.environ.get("TRACE_DATA_DIR", Path(__file__).resolve().parents[1].parent / "shared" / "data"))

if os.environ.get("PYTEST_XDIST_WORKER"):
    # Parallel test workers share the cores: one torch thread each (and in the processes they
    # start), so that workers x threads <= cores; oversubscribed threads made the suite 4x slower.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

for _name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def _restore_warning_filters_after_sktime_suppressions() -> None:
    """sktime (1.2) suppresses a pandas deprecation in a context manager whose exit adds a global
    ``"default"`` filter for every FutureWarning instead of restoring the filter list; after the
    first forecasting horizon with a frequency, that filter overrides the ones pyproject.toml sets
    (sktime's own ``remember_data`` announcement came back hundreds of times). Here the context
    manager restores the list it found, as ``warnings.catch_warnings`` does."""
    import warnings

    try:
        from sktime.utils.warnings import _SuppressWarningPattern
    except ImportError:  # pragma: no cover - another sktime layout: nothing to repair
        return

    def __enter__(self):
        self._saved_filters = list(warnings.filters)
        warnings.filterwarnings("ignore", category=self.warning_type, message=self.message_pattern)

    def __exit__(self, *exc):
        warnings.filters[:] = self._saved_filters
        mutated = getattr(warnings, "_filters_mutated", None) or getattr(warnings, "_filters_mutated_lock_held", None)
        if mutated is not None:  # the module's cache of "already warned" entries
            mutated()

    _SuppressWarningPattern.__enter__ = __enter__
    _SuppressWarningPattern.__exit__ = __exit__


_restore_warning_filters_after_sktime_suppressions()

try:  # statsmodels puts an "always" filter for its ConvergenceWarning first when imported;
    # imported here, before pytest applies pyproject's filters, those filters come first
    import statsmodels.tools.sm_exceptions  # noqa: F401
except ImportError:  # pragma: no cover - statsmodels comes with sktime's AutoETS extras
    pass


def data_path(*parts: str) -> Path:
    """A file of ``../shared/data``; the test is skipped (with the reason) where it is absent."""
    path = DATA_DIR.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data set not available here: {path} (set TRACE_DATA_DIR)")
    return path


# Tests that fork their children (a fit to kill, DDP ranks): POSIX only.
needs_fork = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork (POSIX)")


def _quietly(target, *args) -> None:
    warnings.simplefilter("ignore")
    target(*args)


def forked(target, *args) -> multiprocessing.Process:
    """``target(*args)`` (warnings off) in a child forked from the test's process: a process of
    its own without a fresh interpreter's 7 s of imports. Its ``exitcode`` is ``-9`` where it
    killed itself."""
    child = multiprocessing.get_context("fork").Process(target=_quietly, args=(target, *args))
    child.start()
    return child


def finished(child: multiprocessing.Process, timeout: float = 300) -> int | None:
    """The child's exit code; ``None`` (after killing it) where it ran past ``timeout`` seconds."""
    child.join(timeout=timeout)
    if child.exitcode is None:
        child.kill()
    return child.exitcode


def tiny_config():
    from trace_forecast.pretrain import build_config

    return build_config(d_model=32, layers=2, d_ff=64, heads=2)


@pytest.fixture(scope="session")
def tiny_backbone_dir(tmp_path_factory) -> Path:
    """A random MOMENT-layout checkpoint (d_model 32, 2 blocks) in a temporary folder."""
    from trace_forecast.backbone import MomentBackbone, save_backbone

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tiny_backbone")
    save_backbone(MomentBackbone(tiny_config()), folder)
    return folder


SMALL_FIT_WINDOWS = 128


@pytest.fixture
def small_fits(monkeypatch):
    """Default-sized fits at a fraction of their CPU time, every line still run: the closed-form
    head start reads 512 training and 128 validation windows instead of 8,192 and 2,048
    (:mod:`trace_forecast.heads.ridge`), and gradient training at most ``SMALL_FIT_WINDOWS``
    windows an epoch instead of ``max_windows`` (1,024 by default), in both front ends; the
    validation windows, a quarter of ``max_windows`` by default, are capped at the same. The
    examples and the doc pages run this way in the suite (the head start's forward passes
    were 63 % of a default fit, training most of the rest); ``docs/make_figures.sh`` runs the
    examples at full size and records what they print."""
    from trace_forecast.darts import model as darts_model
    from trace_forecast.engine import windows
    from trace_forecast.heads import ridge

    monkeypatch.setattr(ridge, "RIDGE_WINDOWS", 512)
    monkeypatch.setattr(ridge, "RIDGE_VALIDATION_WINDOWS", 128)

    def capped(limit: int | None) -> int:
        return SMALL_FIT_WINDOWS if limit is None else min(limit, SMALL_FIT_WINDOWS)

    subsample, samples_for_windows = windows.subsample, darts_model.samples_for_windows
    monkeypatch.setattr(windows, "subsample", lambda plan, limit, seed=0: subsample(plan, capped(limit), seed))
    monkeypatch.setattr(darts_model, "samples_for_windows", lambda limit, width: samples_for_windows(capped(limit), width))


def pytest_collection_modifyitems(config, items):
    """Longest first (sktime's conformance suite, then the other ``slow`` tests), so that
    the parallel workers do not end with one of them running alone."""
    def rank(item) -> int:
        if "test_check_estimator" in item.nodeid:
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)
