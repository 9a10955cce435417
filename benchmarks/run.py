"""Run a benchmark suite and write its raw results to ``benchmarks/results/``.

``python -m benchmarks.run --profile quick --suite long_horizon``  (suites: long_horizon,
m4, anomaly, examples, small_data, all; ``all`` runs the profile's own suites). Then ``python -m benchmarks.report`` writes ``docs/benchmarks.md`` and
the figures. The ``quick`` profile took about 40 minutes on 2 CPU cores (runs itemised in docs/benchmarks.md); ``standard``
(3 seeds, every test window, the defaults' training budget; long_horizon, m4 and small_data) about
an hour and a half (each suite's wall time is recorded in ``results/durations_standard.json``); ``full`` is the whole protocol with 3 seeds, meant for a GPU.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings

from benchmarks.common import PROFILES, RESULTS, write_rows

SUITES = ("long_horizon", "m4", "anomaly", "examples", "small_data")


def record_duration(profile: str, suite: str, seconds: float) -> None:
    """Wall time of each suite run, for the report (``durations_<profile>.json``)."""
    path = RESULTS / f"durations_{profile}.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    data[suite] = round(seconds)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


def _log(row: dict) -> None:
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
    print(shown, flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--suite", choices=(*SUITES, "all"), default="all")
    parser.add_argument("--methods", nargs="+", help="only these methods (long_horizon, m4, anomaly); merged into the results file")
    args = parser.parse_args(argv)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    profile = PROFILES[args.profile]
    for suite in (profile.suites or SUITES) if args.suite == "all" else (args.suite,):
        start = time.perf_counter()
        module = __import__(f"benchmarks.{suite}", fromlist=["run"])
        if args.methods:
            rows = module.run(profile, methods=args.methods, log=_log)
        else:
            rows = module.run(profile, log=_log)
        path = write_rows(rows, f"{suite}_{profile.name}", merge=bool(args.methods))
        seconds = time.perf_counter() - start
        record_duration(profile.name, suite + (" (" + " ".join(args.methods) + ")" if args.methods else ""), seconds)
        print(f"{suite}: {len(rows)} rows in {seconds:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
