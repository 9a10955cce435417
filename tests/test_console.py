"""What a fit prints and logs: nothing at ``verbose=False``; a progress bar and one INFO line
per Gated DSIC selection round at ``verbose=True``; no Lightning banners in Darts by default.

The silence checks run in fresh interpreters: the test session's own logging set-up
(``conftest.py``) must not be what keeps them quiet.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
from helpers import seasonal_series, tiny_forecaster

from trace_forecast import TraceForecaster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One interpreter (imports cost seconds): a default sktime fit and a quiet Darts fit must print
# nothing; after the mark, a Darts fit at its default verbosity shows Darts' progress bar only.
FITS = """
import sys
from darts import TimeSeries
from trace_forecast import TraceForecaster
from trace_forecast.darts import TraceModel
from trace_forecast.datasets import load_etth1
y = load_etth1()["OT"].iloc[:900]
TraceForecaster(random_state=0).fit(y, fh=range(1, 25)).predict()
series = TimeSeries.from_dataframe(load_etth1()[["OT"]].iloc[:1200]).astype("float32")
model = TraceModel(input_chunk_length=96, output_chunk_length=24, max_windows=256, random_state=0)
model.fit(series, verbose=False)
model.predict(24, verbose=False)
for stream in (sys.stdout, sys.stderr):
    print(MARK, file=stream, flush=True)
model = TraceModel(input_chunk_length=96, output_chunk_length=24, max_windows=256, random_state=0)
model.fit(series)
model.predict(24)
"""
MARK = "=== default verbosity ==="


def run_script(source: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "default"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=300)


@pytest.mark.slow
def test_default_fits_print_nothing_and_darts_shows_no_banners_by_default():
    done = run_script(f"MARK = {MARK!r}\n" + FITS)
    assert done.returncode == 0, done.stderr
    quiet_out, default_out = done.stdout.split(MARK + "\n")
    quiet_err, default_err = done.stderr.split(MARK + "\n")
    assert quiet_out == "" and quiet_err == ""  # a default sktime fit; Darts' fit and predict at verbose=False
    printed = default_out + default_err
    for noise in ("GPU available", "TPU available", "litlogger", "Trainable params", "Warning", "stopped:"):
        assert noise not in printed
    assert "Epoch" in printed  # Darts' own progress bar is its convention at the default


def _series() -> pd.Series:
    return seasonal_series(160, period_index=True)


def _forecaster(backbone, **kwargs) -> TraceForecaster:
    return tiny_forecaster(backbone, max_epochs=2, **kwargs)


def test_verbose_fit_logs_each_selection_round_and_shows_a_progress_bar(tiny_backbone_dir, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="trace_forecast"):
        f = _forecaster(tiny_backbone_dir, verbose=True).fit(_series(), fh=[1, 2, 3])
    rounds = [r for r in caplog.records if r.name.startswith("trace_forecast") and "Gated DSIC" in r.getMessage()]
    history = f.selection_history_
    assert len(rounds) == history["step"].nunique() >= 2
    assert rounds[-1].levelno == logging.INFO and "selection frozen" in rounds[-1].getMessage()
    printed = capsys.readouterr()
    assert "Epoch" in printed.out + printed.err and "loss" in printed.out + printed.err


def test_quiet_fit_logs_nothing(tiny_backbone_dir, caplog, capsys):
    with caplog.at_level(logging.INFO, logger="trace_forecast"):
        _forecaster(tiny_backbone_dir).fit(_series(), fh=[1, 2, 3])
    printed = capsys.readouterr()
    assert printed.out == "" and printed.err == ""
    # The records exist for applications that configure logging; nothing reaches the console.
    assert all(r.levelno <= logging.INFO for r in caplog.records if r.name.startswith("trace_forecast"))


def test_selection_history_matches_the_final_selection(tiny_backbone_dir):
    f = _forecaster(tiny_backbone_dir).fit(_series(), fh=[1, 2, 3])
    history = f.selection_history_
    assert list(history.columns) == ["step", "module", "importance", "kept", "final"]
    last = history[history["final"]]
    assert last["step"].nunique() == 1
    final = f.selected_modules_.set_index("module")["kept"]
    assert last.set_index("module")["kept"].equals(final.loc[last["module"]])
    assert history.groupby("step")["module"].count().eq(len(final)).all()
