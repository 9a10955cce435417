"""Property-based tests: messy data either works (finite output of the right shape and
index) or raises a documented error -- never a raw torch/numpy traceback, never NaN output,
never a mutated input.

Documented errors: the package's own (``trace_forecast.errors``, all ``TraceError``) and the
input checks sktime or Darts runs before an estimator sees the data (``ValueError``/``TypeError``
raised inside that library, e.g. for missing values or an index without a frequency).
Example counts are bounded so the suite stays within its time budget.
"""

from __future__ import annotations

import traceback
import warnings
from collections.abc import Callable
from typing import TypeVar

import numpy as np
import pandas as pd
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from trace_forecast import TraceAnomalyDetector, TraceForecaster  # noqa: E402
from trace_forecast.errors import TraceError  # noqa: E402

DTYPES = ("float64", "float32", "int64", "Float64", "Int64")
PATTERNS = ("normal", "normal", "constant", "near_constant", "nan", "inf")  # half the cases usable
INDEXES = ("range", "datetime_freq", "datetime_irregular", "period")
T = TypeVar("T")
PROFILE = settings(max_examples=12, deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
# Tiny training settings every estimator under test shares (Darts' names added where they differ).
TRAINING = {"max_windows": 64, "batch_size": 32, "random_state": 0, "dsic_interval": 2, "dsic_draws": 2}


def tiny(backbone_dir) -> dict:
    """Parameters of a tiny sktime estimator or Darts scorer on the test backbone."""
    return {"backbone": str(backbone_dir), "context_length": 32, "max_epochs": 1, **TRAINING}


@st.composite
def frames(draw) -> pd.DataFrame:
    n = draw(st.one_of(st.integers(1, 40), st.integers(41, 400), st.integers(41, 400), st.integers(401, 5000)))
    width = draw(st.one_of(st.just(1), st.integers(2, 20)))
    dtype, pattern, index_kind = draw(st.sampled_from(DTYPES)), draw(st.sampled_from(PATTERNS)), draw(
        st.sampled_from(INDEXES))
    magnitude = draw(st.sampled_from((1e-12, 1e-6, 1.0, 1e6, 1e12)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    t = np.arange(n)[:, None]
    values = np.sin(2 * np.pi * t / 24 + np.arange(width)) + 0.1 * rng.normal(size=(n, width))
    if pattern == "constant":
        values = np.full((n, width), 3.0)
    elif pattern == "near_constant":
        values = 3.0 + 1e-9 * rng.normal(size=(n, width))
    values = values * magnitude
    if pattern in ("nan", "inf") and n > 0:
        values[rng.integers(0, n), rng.integers(0, width)] = np.nan if pattern == "nan" else np.inf
    if dtype in ("int64", "Int64"):
        values = np.nan_to_num(np.round(values), nan=0, posinf=0, neginf=0) if dtype == "int64" else np.round(values)
        values = np.clip(values, -2**62, 2**62)
    if index_kind == "range":
        index = pd.RangeIndex(n)
    elif index_kind == "datetime_freq":
        index = pd.date_range("2020-01-01", periods=n, freq="h")
    elif index_kind == "datetime_irregular":
        index = pd.DatetimeIndex(pd.Timestamp("2020-01-01") + pd.to_timedelta(
            np.cumsum(rng.integers(1, 5, n)), unit="h"))
    else:
        index = pd.period_range("2020-01", periods=n, freq="M")
    frame = pd.DataFrame(values, index=index, columns=[f"c{i}" for i in range(width)])
    try:
        return frame.astype(dtype)
    except (TypeError, ValueError):  # e.g. inf into Int64: keep float
        return frame


def documented(error: BaseException, library: str) -> bool:
    """One of the package's errors, or an input check inside ``library`` (sktime, darts)."""
    if isinstance(error, TraceError):
        return True
    last = traceback.extract_tb(error.__traceback__)[-1].filename
    return isinstance(error, ValueError | TypeError) and f"/{library}/" in last


def attempt(run: Callable[[], T], library: str) -> T | None:
    """``run()`` with warnings silenced: its result, or ``None`` once the error it raised is
    checked to be documented (each outcome is counted in hypothesis' statistics)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = run()
    except Exception as error:  # noqa: BLE001 - the property is about which errors escape
        assert documented(error, library), f"undocumented {type(error).__name__}: {error}"
        hypothesis.event(f"raised {type(error).__name__}")
        return None
    hypothesis.event("worked")
    return result


def _finite(frame) -> bool:
    return np.isfinite(np.asarray(frame, dtype=float)).all()


@PROFILE
@given(y=frames(), horizon=st.integers(1, 12))
def test_forecaster_works_or_raises_a_documented_error(y, horizon, tiny_backbone_dir):
    original = y.copy(deep=True)
    forecaster = TraceForecaster(**tiny(tiny_backbone_dir))
    fh = list(range(1, horizon + 1))
    pred = attempt(lambda: forecaster.fit(y, fh=fh).predict(), "sktime")
    if pred is not None:
        assert pred.shape == (horizon, y.shape[1])
        assert list(pred.columns) == list(y.columns)
        assert _finite(pred), "NaN or inf forecast"
        expected = forecaster.fh.to_absolute_index(forecaster.cutoff)
        assert pred.index.equals(expected)
    pd.testing.assert_frame_equal(y, original)  # the caller's data is untouched


@PROFILE
@given(x=frames())
def test_detector_works_or_raises_a_documented_error(x, tiny_backbone_dir):
    original = x.copy(deep=True)
    detector = TraceAnomalyDetector(**tiny(tiny_backbone_dir))
    scores = attempt(lambda: detector.fit(x).transform_scores(x), "sktime")
    if scores is not None:
        assert len(scores) == len(x)
        assert _finite(scores), "NaN or inf score"
    pd.testing.assert_frame_equal(x, original)


def _darts_series(frame: pd.DataFrame):
    """The frame as a Darts ``TimeSeries``, or ``None`` where Darts itself refuses it."""
    from darts import TimeSeries

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return TimeSeries.from_dataframe(frame.astype("float64"))
    except (ValueError, TypeError):
        return None


QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


@PROFILE
@given(y=frames(), horizon=st.integers(1, 12))
def test_darts_model_works_or_raises_a_documented_error(y, horizon, tiny_backbone_dir):
    pytest.importorskip("darts")
    from trace_forecast.darts import TraceModel

    series = _darts_series(y)
    hypothesis.assume(series is not None)
    before = series.values(copy=True)
    model = TraceModel(backbone=str(tiny_backbone_dir), input_chunk_length=32, output_chunk_length=horizon,
                       n_epochs=1, pl_trainer_kwargs=QUIET, **TRAINING)
    pred = attempt(lambda: model.fit(series, verbose=False).predict(horizon, verbose=False), "darts")
    if pred is not None:
        assert pred.n_timesteps == horizon and pred.width == series.width
        assert pred.start_time() == series.end_time() + series.freq
        assert _finite(pred.values()), "NaN or inf forecast"
    np.testing.assert_array_equal(series.values(copy=False), before)


@PROFILE
@given(x=frames())
def test_darts_scorer_works_or_raises_a_documented_error(x, tiny_backbone_dir):
    pytest.importorskip("darts")
    from trace_forecast.darts import TraceAnomalyScorer

    series = _darts_series(x)
    hypothesis.assume(series is not None)
    before = series.values(copy=True)
    scorer = TraceAnomalyScorer(**tiny(tiny_backbone_dir))
    scores = attempt(lambda: scorer.fit(series).score(series), "darts")
    if scores is not None:
        assert len(scores) == len(series)
        assert _finite(scores.values()), "NaN or inf score"
    np.testing.assert_array_equal(series.values(copy=False), before)
