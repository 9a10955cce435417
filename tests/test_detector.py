"""TraceAnomalyDetector: scores for any length, labels, and a planted anomaly found."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_detector

from trace_forecast import TraceAnomalyDetector
from trace_forecast.errors import DataError


def _signal(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = np.sin(2 * np.pi * t / 32) + 0.1 * rng.normal(size=n)
    return pd.DataFrame({"x": x})


@pytest.fixture
def make(tiny_backbone_dir):
    return lambda **kwargs: tiny_detector(tiny_backbone_dir, **kwargs)


@pytest.mark.parametrize("length", [5, 63, 64, 65, 1000])
def test_scores_cover_series_of_any_length(make, length):
    d = make().fit(_signal(300))
    scores = d.transform_scores(_signal(length, seed=1))
    assert scores.shape == (length, 1)
    assert np.isfinite(scores.to_numpy()).all()


def test_labels_and_sparse_predictions_agree(make):
    d = make(threshold="contamination", contamination=0.02).fit(_signal(400))
    x = _signal(500, seed=3)
    sparse = d.predict(x)
    dense = d.transform(x)
    assert list(sparse.columns) == ["ilocs"]
    assert set(np.flatnonzero(dense.iloc[:, 0].to_numpy())) == set(sparse["ilocs"])
    assert 5 <= len(sparse) <= 15  # about 2 % of 500


def test_fixed_and_percentile_thresholds(make):
    x = _signal(400)
    d = make(threshold=0.5).fit(x)
    assert d.threshold_ == 0.5
    d = make(threshold="percentile", percentile=90.0).fit(x)
    assert d.threshold_ == pytest.approx(np.percentile(d.train_scores_, 90.0))


@pytest.mark.parametrize("as_series", [True, False])
def test_update_refits_on_the_data_so_far(make, as_series):
    """sktime's default update: the new data joins the old and the detector refits on both
    (a pd.Series failed in sktime's combine of the old and new data)."""
    x = _signal(600)["x"] if as_series else _signal(600)
    d = make().fit(x.iloc[:300])
    before = len(d.train_scores_)
    d.update(x.iloc[300:])
    assert len(d.train_scores_) == 2 * before == 600
    assert d.transform_scores(x).shape == (600, 1)


def test_multivariate_input(make):
    x = pd.DataFrame({"a": _signal(300)["x"], "b": 50 + 10 * _signal(300, seed=2)["x"]})
    d = make().fit(x)
    scores = d.transform_scores(x)
    assert scores.shape == (300, 1)
    # columns go by name: reordered they score the same (they were read by position);
    # other names raise; an array (no names) goes by position
    pd.testing.assert_frame_equal(d.transform_scores(x[["b", "a"]]), scores)
    np.testing.assert_array_equal(d.transform_scores(x.to_numpy()).to_numpy(), scores.to_numpy())
    with pytest.raises(DataError, match=r"columns \['a', 'c'\] but the detector was fitted on \['a', 'b'\]"):
        d.transform_scores(x.rename(columns={"b": "c"}))
    assert d.fit(x.rename(columns={"b": "c"})).columns_ == ["a", "c"]   # a refit takes new columns


def test_a_channel_constant_in_training_is_left_out_of_the_score(make):
    """A channel that held one value in training gives the score no unit: the first noise in
    new data outscored any anomaly and flagged every step. It scores at most the median
    training score, so the other channel's spike still ranks first; all channels flat is an error."""
    a = _signal(300)["x"].to_numpy()
    d = make().fit(pd.DataFrame({"a": a, "b": np.full(300, 5.0)}))
    assert d.flat_channels_ == ["b"]
    test = _signal(300, seed=1)["x"].to_numpy().copy()
    test[200] += 4.0
    noise = 1e-3 * np.random.default_rng(1).standard_normal(300)
    noisy = d.transform_scores(pd.DataFrame({"a": test, "b": 5.0 + noise}))["scores"].to_numpy()
    clean = d.transform_scores(pd.DataFrame({"a": test, "b": np.full(300, 5.0)}))["scores"].to_numpy()
    typical = np.median(d.train_scores_)
    np.testing.assert_allclose(np.maximum(noisy, typical), np.maximum(clean, typical))
    # before: the flat channel's noise scored orders of magnitude above the spike, at every step
    assert noisy.max() < 1e3 and abs(int(np.argmax(noisy)) - 200) <= 32
    with pytest.raises(DataError, match="constant in every channel"):
        make().fit(pd.DataFrame({"a": np.full(300, 1.0), "b": np.full(300, 5.0)}))


def test_zero_shot_mode_trains_nothing(make):
    d = make(adapter="none").fit(_signal(300))
    assert d.get_fitted_params()["total_trainable"] == 0


def test_bad_input_is_rejected(make):
    x = _signal(300)
    x.iloc[:, 0] = np.nan
    with pytest.raises(DataError, match="no observed value"):
        make().fit(x)
    with pytest.raises(ValueError, match="threshold"):
        make(threshold="banana").fit(_signal(300))
    panel = pd.concat({"a": _signal(300), "b": _signal(300, seed=1)})   # sktime's mtype TypeError before
    with pytest.raises(DataError, match="not a panel: fit one detector per instance"):
        make().fit(panel)
    fitted = make().fit(_signal(300))
    with pytest.raises(DataError, match="not a panel"):
        fitted.transform_scores(panel)


def test_callers_data_is_not_mutated(make):
    x = _signal(300)
    before = x.copy(deep=True)
    d = make().fit(x)
    d.transform_scores(x)
    pd.testing.assert_frame_equal(x, before)


@pytest.mark.slow
def test_finds_a_planted_level_shift_with_the_embedded_backbone():
    """Sine + noise + one injected level shift: the top-scored point lies inside it."""
    rng = np.random.default_rng(0)
    n = 3000
    t = np.arange(n)
    x = np.sin(2 * np.pi * t / 50) + 0.1 * rng.normal(size=n)
    x[2200:2260] += 2.5
    frame = pd.DataFrame({"x": x})
    d = TraceAnomalyDetector(context_length=256, max_epochs=1, max_windows=256, random_state=0, stride=16)
    d.fit(frame.iloc[:1500])
    scores = d.transform_scores(frame)["scores"].to_numpy()
    assert 2200 - 8 <= int(np.argmax(scores)) < 2260 + 8
