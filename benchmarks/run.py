"""Run a profile's benchmark suites, each through the harness into ``results/<suite>_<profile>.json``.

``python -m benchmarks.run --profile quick [--suite long_horizon] [--methods TRACE ...]`` (suites:
long_horizon, m4, anomaly, examples, small_data, all; ``all`` runs the profile's own suites);
each suite also runs alone (``python -m benchmarks.long_horizon --profile quick``). Then
``python -m benchmarks.report --profile quick`` writes the profile's page and figures. Each
run's wall time is in its result file (``summary.runs``); the page adds them up.
"""

from __future__ import annotations

import argparse
import importlib

from benchmarks.harness import PROFILES, execute, suite_options

SUITES = ("long_horizon", "m4", "anomaly", "examples", "small_data")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    suite_options(parser)  # --profile, --methods (long_horizon, m4 and anomaly take methods)
    parser.add_argument("--suite", choices=(*SUITES, "all"), default="all")
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    for suite in (profile.suites or SUITES) if args.suite == "all" else (args.suite,):
        module = importlib.import_module(f"benchmarks.{suite}")
        execute(module, argparse.Namespace(out=None, fresh=False, report=False, profile=args.profile,
                                           methods=args.methods if suite in ("long_horizon", "m4", "anomaly") else None))


if __name__ == "__main__":
    main()
