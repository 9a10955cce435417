"""Run a benchmark suite and write its raw results to ``benchmarks/results/``.

``python -m benchmarks.run --profile quick --suite long_horizon``  (suites: long_horizon,
m4, anomaly, all). Then ``python -m benchmarks.report`` writes ``docs/benchmarks.md`` and
the figures. The ``quick`` profile fits in about 30 minutes on 2 CPU cores; ``full`` is
the whole protocol with 3 seeds, meant for a GPU.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

from benchmarks.common import PROFILES, write_rows

SUITES = ("long_horizon", "m4", "anomaly", "examples")


def _log(row: dict) -> None:
    shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}
    print(shown, flush=True)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--suite", choices=(*SUITES, "all"), default="all")
    args = parser.parse_args(argv)
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "darts"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    profile = PROFILES[args.profile]
    for suite in SUITES if args.suite == "all" else (args.suite,):
        start = time.perf_counter()
        module = __import__(f"benchmarks.{suite}", fromlist=["run"])
        rows = module.run(profile, log=_log)
        path = write_rows(rows, f"{suite}_{profile.name}")
        print(f"{suite}: {len(rows)} rows in {time.perf_counter() - start:.0f} s -> {path}", flush=True)


if __name__ == "__main__":
    main()
