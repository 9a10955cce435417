"""A fingerprint of what the package computes, to show that a refactoring changed nothing.

``python -m benchmarks.fingerprint --label NAME`` fits small seeded configurations of every
front end on the packaged ETTh1 (the sktime forecaster and detector, the Darts model and
scorer, zero-shot and multi-task included), in fp32 so that the figures do not depend on
the CPU's bf16, and adds to ``results/fingerprint.json`` the SHA-256 of each output's bytes
under ``NAME``. Run it at two commits on one machine: equal digests mean bit-identical results.
"""

from __future__ import annotations

import hashlib
import os
import subprocess

import numpy as np

from benchmarks.harness import Record, main


def digest(array) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(array, dtype=np.float64)).tobytes()).hexdigest()[:16]


def outputs() -> dict[str, str]:
    import pandas as pd
    from darts import TimeSeries

    from trace_forecast import TraceAnomalyDetector, TraceForecaster
    from trace_forecast.darts import TraceAnomalyScorer, TraceModel
    from trace_forecast.datasets import load_etth1

    data = load_etth1()[["HUFL", "MUFL", "OT"]].iloc[:1500].astype("float64")
    y = data.reset_index(drop=True)
    common = dict(context_length=128, max_epochs=1, max_windows=256, batch_size=32, random_state=3, dsic_interval=2,
                  dsic_draws=2)
    out = {}
    forecaster = TraceForecaster(**common).fit(y, fh=np.arange(1, 25))
    out["forecaster.predict"] = digest(forecaster.predict().to_numpy())
    out["forecaster.predict_interval"] = digest(forecaster.predict_interval(coverage=0.8).to_numpy())
    out["forecaster.long_horizon"] = digest(TraceForecaster(**common).fit(y["OT"], fh=np.arange(1, 241)).predict())
    out["forecaster.zero_shot"] = digest(TraceForecaster(fit_strategy="zero-shot", **common).fit(
        y, fh=np.arange(1, 25)).predict().to_numpy())
    joint = TraceForecaster(multitask=True, **common).fit(y, fh=np.arange(1, 25))
    out["forecaster.multitask"] = digest(joint.predict().to_numpy())
    out["forecaster.to_detector"] = digest(joint.to_detector(y).transform_scores(y).to_numpy())
    detector = TraceAnomalyDetector(**common).fit(y[["OT"]])
    out["detector.scores"] = digest(detector.transform_scores(y[["OT"]]).to_numpy())
    series = TimeSeries.from_dataframe(pd.DataFrame(y.to_numpy(np.float32)))
    model = TraceModel(input_chunk_length=128, output_chunk_length=24, n_epochs=1, max_windows=256, batch_size=32,
                       random_state=3, dsic_interval=2, dsic_draws=2, pl_trainer_kwargs={"enable_progress_bar": False})
    model.fit(series, verbose=False)
    out["darts.predict"] = digest(model.predict(48, verbose=False).values())
    scorer = TraceAnomalyScorer(context_length=128, max_epochs=1, max_windows=256, batch_size=32, random_state=3)
    out["darts.scorer"] = digest(scorer.fit(series.univariate_component(0)).score(
        series.univariate_component(0)).values())
    return out


KEY = ("run",)


def options(parser) -> None:
    parser.add_argument("--label", default="current", help="the row's name (e.g. before / after a change)")


def run(args, record: Record) -> None:
    os.environ["TRACE_FORECAST_PRECISION"] = "fp32"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    record.add({"run": args.label, "commit": commit, "outputs": outputs()})


if __name__ == "__main__":
    main(__name__)
