"""What every benchmark shares: profiles, method table, measurement helpers, result rows."""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"

# name -> TraceForecaster / detector parameters (all on the same embedded backbone)
METHODS: dict[str, dict] = {
    "TRACE": {"adapter": "gated_dsic", "head": "reconstruction"},
    "gated+linear head": {"adapter": "gated_dsic", "head": "linear"},
    "LoRA (PEFT) + recon head": {"adapter": "lora", "head": "reconstruction"},
    "AdaLoRA (PEFT) + recon head": {"adapter": "adalora", "head": "reconstruction"},
    "linear probing": {"adapter": "none", "head": "linear"},
    "full fine-tuning": {"adapter": "full", "head": "linear"},
    "TRACE zero-shot": {"fit_strategy": "zero-shot"},
}
ABLATIONS: dict[str, dict] = {
    f"TRACE, temporal map {m}": {"adapter": "gated_dsic", "head": "reconstruction", "temporal_map": m}
    for m in ("truncate", "pool", "dwconv")
}


@dataclass(frozen=True)
class Profile:
    """How much of the protocol to run."""

    name: str
    seeds: tuple[int, ...]
    max_windows: int | None      # training windows per fit (random subset)
    epochs: int
    test_stride: int             # every k-th test origin (1 = every window)
    nab_per_category: int | None  # NAB series per category (None = all)
    darts_epochs: int
    methods: tuple[str, ...] | None = None  # TRACE-family methods and peers to run (None: all, ablations too)
    suites: tuple[str, ...] | None = None   # suites ``--suite all`` runs (None: every suite)


# ``standard``: the package's defaults (1,024 windows x 1 epoch), 3 seeds, every test window,
# the baselines of the benchmark pages (and PEFT LoRA and linear probing); wall time per suite
# in ``results/durations_standard.json``. Full fine-tuning and DLinear stay in ``quick``.
STANDARD_METHODS = ("TRACE", "TRACE zero-shot", "LoRA (PEFT) + recon head", "linear probing", "Darts NLinear")


def seeds_of(params: dict, profile: Profile) -> tuple[int, ...]:
    """A zero-shot forecaster trains nothing, so one seed measures it; the others use every seed."""
    return profile.seeds[:1] if params.get("fit_strategy") == "zero-shot" else profile.seeds

PROFILES = {
    "quick": Profile("quick", (0,), 512, 1, 4, None, 10),
    "standard": Profile("standard", (0, 1, 2), 1024, 1, 1, None, 10, STANDARD_METHODS,
                        ("long_horizon", "m4", "small_data")),
    "full": Profile("full", (0, 1, 2), None, 5, 1, None, 10),
    # ``backbone``: the standard protocol (defaults' budget, every test window) for what a new
    # embedded backbone moves -- TRACE fine-tuned and zero-shot, seed 0 -- with the
    # deterministic baselines, on the long-horizon data sets and M4 Hourly.
    "backbone": Profile("backbone", (0,), 1024, 1, 1, None, 10, ("TRACE", "TRACE zero-shot"),
                        ("long_horizon", "m4")),
}


def _version(module: str) -> str | None:
    """A package's version, None where it is not installed (a GPU machine without sktime)."""
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else the platform's word for it)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    import torch

    import trace_forecast

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sktime": _version("sktime"),
        "darts": _version("darts"),
        "trace_forecast": getattr(trace_forecast, "__version__", "dev"),
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # e.g. AVX2 or AVX512
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu,
    }


def _rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakMemory:
    """Peak resident memory (sampled every 20 ms) and, on CUDA, ``max_memory_allocated``
    while the block runs."""

    def __init__(self) -> None:
        self.peak_rss = 0
        self.peak_cuda: int | None = None
        self._stop = threading.Event()

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_rss = max(self.peak_rss, _rss_bytes())
            time.sleep(0.02)

    def __enter__(self) -> PeakMemory:
        import torch

        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        self.peak_rss = _rss_bytes()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        import torch

        self._stop.set()
        self._thread.join()
        self.peak_rss = max(self.peak_rss, _rss_bytes())
        if torch.cuda.is_available():
            self.peak_cuda = int(torch.cuda.max_memory_allocated())


@contextmanager
def timed():
    """``with timed() as t: ...``; ``t()`` is the elapsed seconds after the block."""
    start = time.perf_counter()
    box = [None]
    yield lambda: box[0]
    box[0] = time.perf_counter() - start


KEY = ("dataset", "horizon", "method", "seed")


def write_record(name: str, rows: list[dict]) -> Path:
    """``results/NAME.json`` with the environment: a script's whole record, rewritten."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"environment": environment(), "rows": rows}, indent=1, default=float))
    return path


def write_rows(rows: list[dict], name: str, merge: bool = False) -> Path:
    """Raw results: one row per run, as CSV and JSON (with the environment). With
    ``merge``, rows already in the file with the same dataset/horizon/method/seed are
    replaced and the others kept (re-running some methods of a suite)."""
    import pandas as pd

    RESULTS.mkdir(parents=True, exist_ok=True)
    existing = RESULTS / f"{name}.json"
    if merge and existing.exists():
        key = lambda r: tuple(str(r.get(k)) for k in KEY)  # noqa: E731
        new = {key(r) for r in rows}
        rows = [r for r in json.loads(existing.read_text())["rows"] if key(r) not in new] + rows
    frame = pd.DataFrame(rows)
    csv = RESULTS / f"{name}.csv"
    frame.to_csv(csv, index=False)
    (RESULTS / f"{name}.json").write_text(json.dumps({"environment": environment(), "rows": rows}, indent=1,
                                                     default=_jsonable))
    return csv


class ResumableRecord:
    """A result file that grows one row at a time and survives interruption.

    Rows are keyed by ``key`` (a tuple of row fields); ``done(row)`` says whether a run is
    already recorded, ``add(row)`` replaces any row with the same key and rewrites the file
    atomically (write, then rename), so a killed run resumes where it stopped.
    """

    def __init__(self, path: Path, key: tuple[str, ...], extra: dict | None = None):
        self.path, self.key, self.extra = Path(path), key, dict(extra or {})
        self.rows: list[dict] = json.loads(self.path.read_text())["rows"] if self.path.is_file() else []

    def _key(self, row: dict) -> tuple:
        return tuple(str(row.get(k)) for k in self.key)

    def done(self, row: dict) -> bool:
        return any(self._key(r) == self._key(row) for r in self.rows)

    def add(self, row: dict) -> None:
        self.rows = [r for r in self.rows if self._key(r) != self._key(row)] + [row]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        record = {**self.extra, "environment": environment(), "rows": self.rows}
        tmp.write_text(json.dumps(record, indent=1, default=_jsonable))
        tmp.replace(self.path)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)


def mean_std_table(stats, row_label: str, rows, columns, digits: int) -> list[str]:
    """Markdown lines of a ``rows x columns`` table of ``stats`` (indexed by ``(row, column)``,
    with ``mean``, ``std`` and ``count``): ``mean ± std`` (the mean alone for one run, ``–``
    where nothing ran); rows without any result are left out."""
    lines = [f"| {row_label} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for row in rows:
        if row not in stats.index.get_level_values(0):
            continue
        cells = []
        for column in columns:
            if (row, column) not in stats.index:
                cells.append("–")
                continue
            cell = stats.loc[(row, column)]
            cells.append(f"{cell['mean']:.{digits}f}" + (f" ± {cell['std']:.{digits}f}" if cell["count"] > 1 else ""))
        lines.append(f"| {row} | " + " | ".join(cells) + " |")
    return lines


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def require(path: Path) -> Path:
    """``path`` under the shared data folder, or a clear error naming it."""
    if not path.exists():
        raise FileNotFoundError(f"benchmark data not found: {path} (put ../shared/data beside the repository "
                                "or set TRACE_DATA_DIR)")
    return path
