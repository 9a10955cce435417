"""The point-spike component (``tasks/spikes.py``) and the detectors' ``spikes`` parameter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from helpers import tiny_detector

from trace_forecast.tasks.spikes import SpikeProfile, extremum_heights, gaussian_differences, spread


def _ar1(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise, x = rng.standard_normal(n), np.zeros(n)
    for i in range(1, n):
        x[i] = 0.9 * x[i - 1] + noise[i]
    return x


def test_extremum_heights_see_peaks_and_troughs_not_shifts_or_slopes():
    x = np.array([0.0, 0.0, 5.0, 0.0, 0.0, -3.0, -1.0, 4.0, 4.0, 1.0, 2.0, 3.0, 4.0, np.nan, 9.0, 0.0])[:, None]
    h = extremum_heights(x)[:, 0]
    assert h[2] == 5.0                    # a peak: the smaller of its two steps
    assert h[5] == 2.0                    # a trough (-3 between 0 and -1)
    assert h[7] == 0.0 and h[8] == 0.0    # a level shift up (7 -> 8 stays): no extremum of one step
    assert h[10] == 0.0 and h[11] == 0.0  # a steady slope: the two steps have opposite signs
    assert h[12] == 0.0 and h[14] == 0.0  # next to a missing value: no evidence
    assert h[0] == 0.0 and h[-1] == 0.0   # the ends have one neighbour
    assert extremum_heights(np.ones((2, 3))).shape == (2, 3)


def test_auto_keeps_gaussian_differences_and_drops_bursty_ones():
    rng = np.random.default_rng(0)
    gaussian = _ar1(4000, 0)
    bursty = np.cumsum(rng.standard_t(2, 4000))     # heavy-tailed steps (a web metric's bursts)
    assert gaussian_differences([np.stack([gaussian, bursty], axis=1)]).tolist() == [True, False]
    assert gaussian_differences([np.ones((100, 1))]).tolist() == [False]   # no variation: nothing to compare


def test_only_a_peak_above_the_training_top_scores_above_the_training_scores():
    x = _ar1(3000, 1)[:, None]
    scores = [np.random.default_rng(2).random((3000, 1)) * 2.0]
    profile = SpikeProfile.fit([x], scores, "auto")
    mapped = profile.mapped(x)
    assert (mapped == np.median(scores[0])).all()          # no training peak exceeds the training top
    spiked = x.copy()
    spiked[1500, 0] += 6 * np.std(np.diff(x[:, 0]))
    component = profile.mapped(spiked)[:, 0]
    assert int(np.argmax(component)) == 1500 and component[1500] > scores[0].max()
    assert (np.delete(component, [1499, 1500, 1501]) == np.median(scores[0])).all()  # lower peaks stay put
    assert SpikeProfile.fit([x], scores, False) is None
    assert spread(component[:, None], 8)[1500 - 3 : 1500 + 4, 0].min() >= component[1500]  # spread over 8 steps


@pytest.fixture
def make(tiny_backbone_dir):
    return lambda **kwargs: tiny_detector(tiny_backbone_dir, **kwargs)


def test_the_detector_finds_spikes_that_reconstruction_misses(make):
    x = _ar1(2400, 3)
    train = pd.DataFrame({"x": x[:800]})
    where = np.array([1000, 1300, 1700, 2100])
    scored = x.copy()
    scored[where] += 6 * np.std(np.diff(x[:800])) * np.array([1, -1, 1, -1])
    frame = pd.DataFrame({"x": scored})
    with_spikes = make(spikes="auto").fit(train)
    assert with_spikes.spike_profile_ is not None and with_spikes.spike_profile_.active.tolist() == [True]
    scores = with_spikes.transform_scores(frame).to_numpy().ravel()
    far = np.abs(np.arange(len(scores))[:, None] - where[None, :]).min(axis=1) > 8
    assert scores[where].min() > scores[far].max()     # every spike outscores every step away from them
    parts = with_spikes.score_components(frame)
    assert "spike" in parts.columns and int(np.argmax(parts["spike"].to_numpy())) in where
    labels = with_spikes.transform(frame).to_numpy().ravel().astype(bool)
    assert labels[where].all()                                   # each spike labelled, on the step itself
    assert (with_spikes.train_scores_ == make().fit(train).train_scores_).all()  # the threshold's basis is unchanged
    plain = make().fit(train)
    assert plain.spike_profile_ is None and "spike" not in plain.score_components(frame).columns
    missed = plain.transform_scores(frame).to_numpy().ravel()
    assert missed[where].min() < missed[far].max()     # without it, AR(1) noise outscores a spike


def test_the_darts_scorer_takes_spikes_too(tiny_backbone_dir):
    from darts import TimeSeries

    from trace_forecast.darts import TraceAnomalyScorer

    x = _ar1(1200, 4).astype(np.float32)
    scorer = TraceAnomalyScorer(context_length=64, max_epochs=1, max_windows=32, batch_size=16, spikes=True,
                                backbone=str(tiny_backbone_dir), random_state=0)
    scorer.fit(TimeSeries.from_values(x[:600]))
    x[900] += 8 * np.std(np.diff(x[:600]))
    assert "spike" in scorer.score_components(TimeSeries.from_values(x)).components
    assert scorer.calibration_.spikes is not None
