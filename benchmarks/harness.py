"""The benchmark harness: one runner, one result schema, one page writer.

A benchmark module states its protocol and its arms, nothing else::

    KEY = ("setting", "method", "seed")    # the fields that name a row (a rerun resumes)
    PAGE = "benchmarks_missing_values.md"  # optional: a docs page written from the results alone

    def options(parser): ...               # optional: the protocol's options (argparse)
    def run(args, record): ...             # runs the arms; ``record.add(row)`` per result
    def page(result) -> str: ...           # optional: the page's body from the result file

    if __name__ == "__main__":
        main(__name__)

``python -m benchmarks.NAME [options] [--out FILE] [--fresh] [--report] [--embedded FOLDER]`` then quiets the
libraries' logging, seeds the global generators, records the environment and hardware, times the run, keeps every row in
``results/NAME.json`` as it arrives (written atomically, so a killed run resumes where it
stopped; ``--fresh`` starts over) and writes the page (``--report`` writes it from the file
alone; ``--embedded`` runs a candidate backbone in place of the embedded one, into another
file). Every result file has one schema::

    {"benchmark": NAME, "protocol": {option: value}, "environment": {...},
     "seconds": wall time of the last run, "rows": [{...}, ...], "summary": {...}}

``summary`` holds what a run derives beyond its rows (a fitted scaling law, a calibration
table); everything else is a row.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
DOCS = Path(__file__).resolve().parents[1] / "docs"

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
# in each suite file's ``summary.runs``. Full fine-tuning and DLinear stay in ``quick``.
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
    while the block runs; ``start_rss`` is the level the block started from."""

    def __init__(self) -> None:
        self.start_rss = 0
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
        self.start_rss = self.peak_rss = _rss_bytes()
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


@contextmanager
def setting(module: ModuleType, name: str, value):
    """``module.name = value`` for the block (an arm that flips a design constant, such as
    ``heads.reconstruction.SIGN_SYMMETRIC_ZERO_SHOT``); the previous value comes back after."""
    before = getattr(module, name)
    setattr(module, name, value)
    try:
        yield
    finally:
        setattr(module, name, before)


class Record:
    """A result file that grows one row at a time, in the one schema, and survives interruption.

    Rows are named by ``key`` (row fields); ``done(row)`` says whether a run is recorded,
    ``add(row)`` replaces any row of the same name and rewrites the file atomically (write,
    then rename). ``protocol`` (the options, and what a run adds to them) and ``summary`` are
    saved with the rows.
    """

    def __init__(self, path: Path, key: tuple[str, ...] = (), benchmark: str = "", protocol: dict | None = None,
                 fresh: bool = False):
        self.path, self.key = Path(path), tuple(key)
        old = load(self.path) if self.path.is_file() and not fresh else {}
        self.rows: list[dict] = old.get("rows", [])
        self.summary: dict = old.get("summary", {})
        self.benchmark = benchmark or old.get("benchmark", self.path.stem)
        self.protocol: dict = protocol if protocol is not None else old.get("protocol", {})
        self.seconds = old.get("seconds")
        self.environment = environment()  # this run's machine, read once (every save writes it)

    def _name(self, row: dict) -> tuple:
        return tuple(str(row.get(k)) for k in self.key)

    def done(self, row: dict) -> bool:
        return bool(self.key) and any(self._name(r) == self._name(row) for r in self.rows)

    def add(self, row: dict, quiet: bool = False) -> None:
        self.extend([row])
        if not quiet:
            print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}, flush=True)

    def extend(self, rows: list[dict]) -> None:
        """Several rows, one write."""
        if self.key:
            names = {self._name(r) for r in rows}
            self.rows = [r for r in self.rows if self._name(r) not in names]
        self.rows.extend(rows)
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        result = {"benchmark": self.benchmark, "protocol": self.protocol, "environment": self.environment,
                  "seconds": self.seconds, "rows": self.rows, "summary": self.summary}
        tmp.write_text(dumps(result))
        tmp.replace(self.path)


def dumps(result: dict) -> str:
    """A result as JSON laid out for review: a field a line, a row a line, a summary entry a
    line (so that a rerun's diff shows the rows that changed, not one number a line)."""
    one = lambda value: json.dumps(value, default=_jsonable)  # noqa: E731
    lines = [f" {one(k)}: {one(v)}," for k, v in result.items() if k not in ("rows", "summary")]
    rows = ",\n".join(f"  {one(row)}" for row in result["rows"])
    lines.append(' "rows": [' + (f"\n{rows}\n ]," if rows else "],"))
    summary = ",\n".join(f"  {one(k)}: {one(v)}" for k, v in result.get("summary", {}).items())
    lines.append(' "summary": {' + (f"\n{summary}\n }}" if summary else "}"))
    return "{\n" + "\n".join(lines) + "\n}\n"


def load(path: Path | str) -> dict:
    """A result file (``results/NAME.json`` by name, or a path)."""
    path = Path(path)
    if not path.suffix:
        path = RESULTS / f"{path}.json"
    return json.loads(path.read_text())


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's global generators: whatever an arm leaves unseeded is
    reproducible (the arms seed their own estimators with the protocol's seeds)."""
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def flat(result: dict) -> dict:
    """A result's protocol, summary, rows and environment in one dict, for page code."""
    return {**result.get("protocol", {}), **result.get("summary", {}), "rows": result["rows"],
            "environment": result.get("environment", {})}


def quiet() -> None:
    """The libraries' info logging and warnings off: a benchmark prints its rows only."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


def _stem(module: ModuleType) -> str:
    name = module.__name__ if module.__name__ != "__main__" else (module.__spec__.name if module.__spec__ else "main")
    return name.rsplit(".", 1)[-1]


def parser_for(module: ModuleType) -> argparse.ArgumentParser:
    """The runner's options and the benchmark's own."""
    stem = _stem(module)
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.{stem}",
                                     description=(module.__doc__ or stem).strip().splitlines()[0])
    parser.add_argument("--out", type=Path, help="the result file (default: benchmarks/results/, named after the "
                                                 "benchmark and, for a profile suite, the profile)")
    parser.add_argument("--fresh", action="store_true", help="start the result file over instead of resuming it")
    parser.add_argument("--report", action="store_true", help="write the page from the result file alone and stop")
    parser.add_argument("--embedded", type=Path, metavar="FOLDER",
                        help="a candidate backbone (config.json + model.safetensors) in place of the embedded one "
                             "for every fit of the run; needs --out, so committed results stay the embedded one's")
    if hasattr(module, "options"):
        module.options(parser)
    return parser


RUNNER_OPTIONS = ("out", "fresh", "report", "embedded")


def use_embedded(folder: Path, out: Path, own: Path) -> None:
    """Make ``folder`` the embedded backbone of this process (``--embedded``): every fit that
    names no backbone loads it. Refused when the result would land in the committed file."""
    from trace_forecast.backbone import io

    if Path(out).resolve() == own.resolve():
        raise SystemExit(f"--embedded needs --out: {own.name} holds the embedded backbone's results")
    missing = [name for name in (io.CONFIG_NAME, io.WEIGHTS_NAME) if not (Path(folder) / name).is_file()]
    if missing:
        raise SystemExit(f"--embedded {folder}: no {' or '.join(missing)} there")
    io.EMBEDDED_DIR = Path(folder).resolve()


def execute(module: ModuleType, args: argparse.Namespace) -> dict:
    """Run ``module``'s arms into ``args.out`` (unless ``--report``), then write its page --
    only from the benchmark's own result file: a side run (``--out`` elsewhere: a smoke run,
    another backbone) prints its page and leaves the committed one alone."""
    name = module.result_name(args) if hasattr(module, "result_name") else _stem(module)
    own = RESULTS / f"{name}.json"
    out = args.out or own
    embedded = getattr(args, "embedded", None)
    if not args.report:
        quiet()
        protocol = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                    if k not in RUNNER_OPTIONS}
        if embedded is not None:
            use_embedded(embedded, out, own)
            protocol["backbone"] = f"{embedded} in place of the embedded weights"
        key = getattr(module, "KEY", ())
        record = Record(out, key, _stem(module), protocol, fresh=args.fresh or not key)  # no key: nothing to resume
        seed_everything(0)
        start = time.perf_counter()
        module.run(args, record)
        record.seconds = round(time.perf_counter() - start, 1)
        record.summary.setdefault("runs", []).append({"protocol": protocol, "seconds": record.seconds,
                                                      "finished_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        record.save()
        print(f"{len(record.rows)} rows in {record.seconds:.0f} s -> {out}", flush=True)
    result = load(out)
    if hasattr(module, "page"):
        own_file = Path(out).resolve() == own.resolve()
        print(write_page(module, result, out) if own_file else page_text(module, result, out))
    return result


def main(module_name: str, argv: list[str] | None = None) -> dict:
    """``python -m benchmarks.NAME``: parse the options, run, write the page."""
    module = sys.modules[module_name]
    return execute(module, parser_for(module).parse_args(argv))


# ------------------------------------------------------------------ the profile suites
SUITE_KEY = ("dataset", "horizon", "method", "seed")


def suite_options(parser: argparse.ArgumentParser) -> None:
    """The options of a suite that ``benchmarks.run`` drives: a profile, some methods."""
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--methods", nargs="+", help="only these methods; their rows replace theirs in the file")


def suite_runner(module_name: str, suite, key: tuple[str, ...] = SUITE_KEY, methods: bool = True):
    """``KEY, options, result_name, run`` of a suite module whose ``suite(profile, record[, methods])``
    runs a profile: its results go to ``results/<suite>_<profile>.json``."""
    if module_name == "__main__":  # python -m benchmarks.<suite>: the suite's own name, not __main__
        module_name = sys.modules["__main__"].__spec__.name
    stem = module_name.rsplit(".", 1)[-1]

    def result_name(args: argparse.Namespace) -> str:
        return f"{stem}_{args.profile}"

    def run(args: argparse.Namespace, record: Record) -> None:
        suite(PROFILES[args.profile], record, **({"methods": args.methods} if methods else {}))

    return key, suite_options, result_name, run


def page_text(module: ModuleType, result: dict, path: Path) -> str:
    """The page: the benchmark's body under a line naming its command, file and hardware, and
    the rows that ran on other machines (the result's ``summary["other_machines"]``: what,
    cpu_model, threads, date, and the file they came from where it is another)."""
    body = module.page(result)
    title, _, rest = body.partition("\n")
    env = result.get("environment", {})
    source = f"benchmarks/results/{Path(path).name}"
    line = (f"Generated by `python -m benchmarks.{_stem(module)} --report` from `{source}` "
            f"({env.get('cpu_model', '?')}, {env.get('cpu_capability', '?')}, {env.get('torch_threads', '?')} "
            f"thread{'' if env.get('torch_threads') == 1 else 's'}{', ' + env['gpu'] if env.get('gpu') else ''}; torch {env.get('torch', '?')}, "
            f"trace_forecast {env.get('trace_forecast', '?')}).")
    others = "".join(f"Rows run on another machine: {o['what']} ({'`' + o['file'] + '`, ' if o.get('file') else ''}"
                     f"{o['cpu_model']}, {o['threads']} thread(s), {o['date']}).\n"
                     for o in result.get("summary", {}).get("other_machines", []))
    return f"{title}\n\n{line}\n{others}{rest}".rstrip() + "\n"


def write_page(module: ModuleType, result: dict, path: Path, page: Path | None = None) -> str:
    text = page_text(module, result, path)
    (page or DOCS / module.PAGE).write_text(text)
    return text


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


def window_count(rows: int, lookback: int, horizon: int) -> int:
    return max(0, rows - lookback - horizon + 1)


def channel_windows(frame, lookback: int, horizon: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Every ``stride``-th window of each column of ``frame``, channel after channel:
    histories ``[n, L]`` and futures ``[n, H]`` (float32)."""
    from trace_forecast.datasets import rolling_windows

    hist, fut = [], []
    for column in frame.columns:
        h, f = rolling_windows(frame[column].to_numpy(np.float32), lookback, horizon)
        hist.append(h[::stride]), fut.append(f[::stride])
    return np.concatenate(hist), np.concatenate(fut)


def panel_windows(values: np.ndarray, lookback: int, horizon: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The same windows with every channel together: ``[m, L, C]`` and ``[m, H, C]``."""
    starts = np.arange(0, window_count(len(values), lookback, horizon), stride)
    return (np.stack([values[s : s + lookback] for s in starts]),
            np.stack([values[s + lookback : s + lookback + horizon] for s in starts]))


def require(path: Path) -> Path:
    """``path`` under the shared data folder, or a clear error naming it."""
    if not path.exists():
        raise FileNotFoundError(f"benchmark data not found: {path} (put ../shared/data beside the repository "
                                "or set TRACE_DATA_DIR)")
    return path
