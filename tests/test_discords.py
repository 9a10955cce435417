"""Multi-scale scores and embedding discords (``tasks/scoring.py``, ``tasks/discord.py``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from trace_forecast import TraceAnomalyDetector
from trace_forecast.tasks.discord import (
    MIN_CONTRAST,
    NOWHERE,
    SubsequenceIndex,
    discord_distances,
    evenly_spaced,
    nearest_distance,
    reference_descriptors,
    relative_contrast,
    subsequence_embeddings,
    to_steps,
)
from trace_forecast.tasks.scoring import MultiScale, scales_of, smooth_errors, tail_level


def _periodic(n: int, seed: int, period: int = 50) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (np.sin(2 * np.pi * np.arange(n) / period) + 0.1 * rng.standard_normal(n)).astype(np.float32)


def test_scales_and_tail_level():
    assert scales_of(128) == (1, 8, 32, 128)
    assert scales_of(1) == (1,)
    assert scales_of(128, "two-span") == (8, 128) and scales_of(1, "two-span") == (1,)
    values = np.arange(101, dtype=float)[:, None]
    center, unit = tail_level(values)
    assert center[0] == 50 and unit[0] == pytest.approx(49.0)
    _, floored = tail_level(np.full((10, 1), 4.0), floor=0.25)
    assert floored[0] == pytest.approx(1.0)                  # constant scores: the floor is the unit


def test_multi_scale_keeps_a_spike_where_it_is_and_sees_a_slow_shift():
    rng = np.random.default_rng(0)
    train = [rng.standard_normal((5000, 1))]
    ms = MultiScale.fit(train, 128)
    z = rng.standard_normal((3000, 1))
    z[1000, 0] += 12.0                                       # a one-step spike
    z[2000:2150, 0] += 1.0                                   # a slow, weak shift: invisible step by step
    s = ms.scores(z)[:, 0]
    assert int(np.argmax(s)) == 1000
    assert s[1000] > 2 * max(s[990], s[1010])                # locality: no plateau around the spike
    plateau = smooth_errors(z, 128)[:, 0]                    # smoothing="max" spreads it over 128 steps
    assert plateau[990] > 0.9 * plateau[1000]
    assert s[2000:2150].mean() > np.quantile(s[:900], 0.99)  # the long spans see the shift


def test_two_span_keeps_a_spike_narrow_and_sees_a_slow_shift():
    rng = np.random.default_rng(0)
    ts = MultiScale.fit([rng.standard_normal((5000, 1))], 128, "two-span")
    z = rng.standard_normal((3000, 1))
    z[1000, 0] += 12.0
    z[2000:2150, 0] += 1.0
    spans = ts.span_scores(z)[:, :, 0]                       # [short, long]
    s = ts.scores(z)[:, 0]
    np.testing.assert_allclose(s, spans.max(axis=0))
    assert 995 <= int(np.argmax(s)) <= 1005
    assert spans[0, 1000] > 2 * max(spans[0, 985], spans[0, 1015])   # the short span: a few steps wide
    assert spans[1, 2000:2150].mean() > np.quantile(spans[1, :900], 0.99)  # the long span sees the shift


def test_tail_threshold_counts_a_plateau_once():
    """Smoothed scores come in plateaus: their tied values are one peak, not many. On the
    two-span scores of 1,500 steps of noise, fitting every tied value put the level at 5.4
    times the top; declustered, the tail model leaves the margin."""
    from trace_forecast.tasks.scoring import TRAIN_MARGIN, tail_threshold

    z = np.random.default_rng(0).standard_normal((1500, 1))
    scores = MultiScale.fit([z], 128, "two-span").scores(z)[:, 0]
    assert tail_threshold(scores, 1e-4) == pytest.approx(TRAIN_MARGIN * scores.max())
    # Independent steps, the tail model's own case: the level still extrapolates past the margin,
    # to the exponential distribution's 1e-6 quantile (13.8).
    steps = np.random.default_rng(0).exponential(size=20_000)
    level = tail_threshold(steps, 1e-6)
    assert level > TRAIN_MARGIN * steps.max() and level == pytest.approx(-np.log(1e-6), rel=0.05)


def test_nearest_distance_excludes_trivial_matches_and_handles_empty():
    x = np.array([[0.0], [0.1], [5.0], [5.1]], np.float32)
    pos = np.array([0, 1, 10, 11])
    np.testing.assert_allclose(nearest_distance(x, x), 0.0)                     # itself
    d = nearest_distance(x, x, pos, pos, exclusion=5)
    np.testing.assert_allclose(d, [5.0, 4.9, 4.9, 5.0], rtol=1e-5)             # the other pair only
    assert nearest_distance(x, np.zeros((0, 1))).tolist() == [0.0] * 4


def test_to_steps_averages_covering_subsequences():
    starts, values, n, length = np.array([0, 8, 16, 20]), np.array([1.0, 2.0, 3.0, 4.0]), 40, 10
    total, count = np.zeros(n), np.zeros(n)
    for s, v in zip(starts, values, strict=True):
        total[s : s + length] += v
        count[s : s + length] += 1
    expected = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    expected[np.isnan(expected)] = np.nanmedian(expected)
    np.testing.assert_allclose(to_steps(starts, values, n, length), expected)
    assert evenly_spaced(10, 4).tolist() == [0, 3, 6, 9] and len(evenly_spaced(0, 4)) == 0


@pytest.fixture(scope="module")
def backbone():
    from trace_forecast.backbone import shared_backbone

    return shared_backbone(None)


def test_a_missing_cycle_is_the_top_discord(backbone):
    """A flat stretch where a cycle should be reconstructs plausibly but has no neighbour."""
    train = _periodic(3000, 0)
    test = _periodic(3000, 1)
    test[1500:1550] = test[1500]
    ref, _ = reference_descriptors(backbone, [train], 128, 8)
    d = discord_distances(backbone, test, ref, 128, 8)
    assert 1500 - 128 <= int(np.argmax(d)) <= 1550 + 128
    assert len(ref) == len(subsequence_embeddings(backbone, train, 128, 8)[0])   # under the cap: all kept


def test_the_index_locates_training_subsequences_and_only_those_seen_once():
    train = [_periodic(400, 0), _periodic(300, 1)]
    train[1][:200] = 1.0                        # a flat stretch: the same values at many starts
    index = SubsequenceIndex.of(train, length=32, stride=8)
    gap = 400 + 32                              # the second series' offset on the position axis
    starts = np.array([0, 16, 368, 200])
    assert index.locate(train[0], starts).tolist() == [0, 16, 368, 200]
    scored = np.concatenate([_periodic(64, 9), train[1]])  # a new beginning, then the second series
    assert index.locate(scored, np.array([0, 64, 64 + 200, 64 + 208])).tolist() == [
        NOWHERE,  # new values
        NOWHERE,  # flat: the training data repeat it, its other copies are neighbours
        gap + 200, gap + 208]
    gappy = train[0].copy()
    gappy[40] = np.nan
    assert SubsequenceIndex.of([gappy], 32, 8).locate(gappy, np.array([24, 32])).tolist() == [24, 32]
    assert index.locate(gappy, np.array([24, 32])).tolist() == [NOWHERE, NOWHERE]


def test_a_detector_scoring_its_own_training_data_does_not_match_the_anomaly_with_itself():
    """fit(X).transform_scores(X): each training subsequence used to find itself among the
    training neighbours, at distance 0, and an anomaly in X scored as normal data."""
    x = np.sin(np.arange(1200) / 4)
    x[900] += 3.0
    detector = TraceAnomalyDetector(adapter="none", discords=True, threshold="contamination",  # no training
                                    random_state=0).fit(pd.Series(x))
    parts = detector.score_components(pd.Series(x))
    for name in ("discord", "shape discord"):
        assert 900 - 128 < int(parts[name].to_numpy().argmax()) < 900 + 128, name
        assert parts[name].iloc[900] > 10 * parts[name].median(), name
    assert 900 - 128 < int(detector.transform_scores(pd.Series(x)).to_numpy().argmax()) < 900 + 128
    flagged = detector.predict(pd.Series(x))["ilocs"].to_numpy()  # the documented way to label X's own anomalies
    assert len(flagged) and np.all(np.abs(flagged - 900) < 64)


def test_a_chunk_too_short_for_its_own_neighbours_is_compared_with_the_training_data(backbone):
    """A series under two subsequences long has no neighbour of its own (every other one
    overlaps it); its distances come from the training descriptors alone instead of 0."""
    train = _periodic(3000, 0)
    ref, positions = reference_descriptors(backbone, [train], 128, 8)
    chunk = _periodic(200, 1)
    chunk[60:120] = chunk[60]
    d = discord_distances(backbone, chunk, ref, 128, 8, reference_positions=positions,
                          index=SubsequenceIndex.of([train]))
    normal = discord_distances(backbone, train, None, 128, 8)
    assert d.min() > 2 * np.median(normal)


def test_chunked_search_equals_one_pass(backbone):
    """Scoring streams subsequences in chunks (bounded memory) with the same distances."""
    x, (ref, _) = _periodic(2000, 3), reference_descriptors(backbone, [_periodic(1000, 0)], 128, 8)
    np.testing.assert_allclose(discord_distances(backbone, x, ref, 128, 8, chunk=37),
                               discord_distances(backbone, x, ref, 128, 8), rtol=1e-4, atol=1e-5)


def test_blockwise_nearest_search_equals_one_block(monkeypatch):
    """The nearest-neighbour search and the shape discord's queries go in blocks (bounded
    memory) with the same distances, trivial-match exclusion included."""
    from trace_forecast.tasks import shape_discord

    rng = np.random.default_rng(0)
    query, reference = rng.standard_normal((300, 16)), rng.standard_normal((500, 16))
    positions = np.arange(500)
    one = nearest_distance(query, reference, positions[:300], positions, exclusion=20, block=10**9)
    np.testing.assert_array_equal(nearest_distance(query, reference, positions[:300], positions, exclusion=20,
                                                   block=1000), one)
    x = _periodic(3000, 4)
    whole = shape_discord.shape_distances(x, 0.1, length=32)
    monkeypatch.setattr(shape_discord, "QUERY_CHUNK", 7)
    np.testing.assert_allclose(shape_discord.shape_distances(x, 0.1, length=32), whole, rtol=1e-5)


def test_self_join_keeps_a_drifted_series_from_being_one_long_discord(backbone):
    """Against the training descriptors alone, a series at another amplitude and period is
    discordant everywhere; its own subsequences are its neighbours in the self-join."""
    train = _periodic(3000, 0)
    drifted = 2.0 * _periodic(3000, 2, period=70)
    ref, _ = reference_descriptors(backbone, [train], 128, 8)
    starts, desc = subsequence_embeddings(backbone, drifted, 128, 8)
    prefix_only = np.median(nearest_distance(desc, ref.astype(np.float32)))
    with_self = np.median(discord_distances(backbone, drifted, ref, 128, 8))
    assert with_self < 0.7 * prefix_only


def test_detector_options_and_their_fitted_state():
    x = pd.DataFrame({"x": _periodic(1500, 0)})
    fast = {"context_length": 64, "max_epochs": 1, "max_windows": 32, "batch_size": 16, "random_state": 0}
    plain = TraceAnomalyDetector(smoothing="max", discords=False, **fast).fit(x)
    assert plain.multi_scale_ is None and plain.discords_ is None
    full = TraceAnomalyDetector(**fast).fit(x)                    # discords="auto": a periodic series has them
    assert full.discord_contrast_ > MIN_CONTRAST and plain.discord_contrast_ is None
    assert full.multi_scale_.scales == (8, 128) and len(full.discords_.references) == 1
    assert full.multi_scale_.smoothing == "two-span" and full.discords_.weight == 5.0
    multi = TraceAnomalyDetector(smoothing="multi-scale", **fast).fit(x)
    assert multi.multi_scale_.scales == (1, 8, 32, 128)
    test = x.copy()
    test.iloc[1000:1050] = float(test.iloc[1000, 0])               # a missing cycle
    s = full.transform_scores(test)["scores"].to_numpy()
    assert 1000 - 128 <= int(np.argmax(s)) <= 1050 + 128
    with pytest.raises(Exception, match="smoothing"):
        TraceAnomalyDetector(smoothing="median").fit(x)
    with pytest.raises(Exception, match="discords"):
        TraceAnomalyDetector(discords="yes").fit(x)


def test_relative_contrast_tells_a_repeating_series_from_an_irregular_one():
    """The statistic behind ``discords="auto"``: far above 1 where subsequences repeat, near 1
    for noise; pooled over several series; NaN where too few subsequences exist."""
    rng = np.random.default_rng(0)
    periodic, noise = _periodic(4000, 1), rng.standard_normal(4000)
    assert relative_contrast([periodic]) > 3 * MIN_CONTRAST
    assert relative_contrast([noise]) < 1.5 < MIN_CONTRAST
    assert relative_contrast([periodic[:2000], periodic[2000:]]) > 3 * MIN_CONTRAST
    assert np.isnan(relative_contrast([periodic[:150]]))
    gappy = periodic.copy()
    gappy[500:700] = np.nan
    assert relative_contrast([gappy]) > 3 * MIN_CONTRAST              # missing values are skipped


def test_auto_discords_stay_out_of_an_irregular_series():
    """On noise every subsequence is a discord of sorts: ``"auto"`` leaves discords out (and
    says why); ``True`` keeps them."""
    x = pd.DataFrame({"x": np.random.default_rng(3).standard_normal(1500).astype(np.float32)})
    fast = {"context_length": 64, "max_epochs": 1, "max_windows": 32, "batch_size": 16, "random_state": 0}
    auto = TraceAnomalyDetector(**fast).fit(x)
    assert auto.discords_ is None and auto.discord_contrast_ < MIN_CONTRAST
    assert "discord" not in auto.score_components(x).columns
    forced = TraceAnomalyDetector(discords=True, **fast).fit(x)
    assert forced.discords_ is not None and "discord" in forced.score_components(x).columns


def test_shape_discords_find_a_distorted_cycle_whatever_its_phase():
    """Neighbours at every step: a normal cycle finds a near-copy whatever its phase (the
    embedding discord's neighbours every 8 steps cannot), so the distorted cycle stands out;
    noise on a flat stretch is not stretched into a shape (the spread floor)."""
    from trace_forecast.tasks.shape_discord import SPREAD_FLOOR, dense_neighbours, shape_distances

    x = np.sin(2 * np.pi * np.arange(6000) / 77).astype(np.float32)    # a period prime to the stride
    x[4000:4040] = x[4000:4040] ** 3                                    # one distorted cycle
    floor = SPREAD_FLOOR * float(x[:3000].std())
    reference, positions = dense_neighbours([x[:3000]], floor)
    assert len(reference) == 3000 - 128 + 1 and np.array_equal(positions, np.arange(len(reference)))
    d = shape_distances(x, floor, reference)
    assert 4000 - 128 <= int(np.argmax(d)) <= 4040 + 128
    assert np.median(d) < 0.05 * d.max()                                # normal cycles: near-copies
    flat = np.r_[np.zeros(2000), np.ones(2000)].astype(np.float32)
    flat += 1e-4 * np.random.default_rng(0).standard_normal(4000).astype(np.float32)
    f = shape_distances(flat, SPREAD_FLOOR * 0.5, None)
    assert 2000 - 128 <= int(np.argmax(f)) < 2000 + 128                 # the jump, not the noise


def test_a_shape_profile_keeps_its_neighbour_windows_within_budget_and_out_of_its_pickle(monkeypatch):
    """Repeated scoring reuses the training neighbour windows (bit-identical to rebuilding
    them); channels past the cache's budget rebuild per call; a pickle carries the training
    series only."""
    import pickle

    from trace_forecast.tasks import shape_discord

    rng = np.random.default_rng(0)
    t = np.arange(3000)
    train = [np.stack([np.sin(t / 7), np.cos(t / 5)], 1) + 0.1 * rng.standard_normal((3000, 2))]
    scores = [rng.random((3000, 2))]
    profile, _ = shape_discord.ShapeProfile.fit(train, scores)
    test = np.stack([np.sin(np.arange(900) / 7), np.cos(np.arange(900) / 5)], 1)
    monkeypatch.setattr(shape_discord, "REFERENCE_CACHE_BYTES", 1.5 * (3000 - 127) * 128 * 4)  # one channel's windows
    first = profile.distances(test)
    assert list(profile._references) == [0]
    np.testing.assert_array_equal(first, profile.distances(test))
    restored = pickle.loads(pickle.dumps(profile))
    assert restored._references == {} and len(pickle.dumps(profile)) < (3000 - 127) * 128 * 4
    np.testing.assert_array_equal(first, restored.distances(test))


def test_the_shape_discord_joins_the_score_with_the_embedding_discord():
    """With discords the score has both discords; each is mapped onto the reconstruction
    score's units from its own training distances; the same fit scores alike twice."""
    x = pd.DataFrame({"x": _periodic(1500, 0)})
    fast = {"context_length": 64, "max_epochs": 1, "max_windows": 32, "batch_size": 16, "random_state": 0}
    detector = TraceAnomalyDetector(**fast).fit(x)
    profile = detector.shape_discords_
    assert profile is not None and profile.weight == 15.0 and len(profile.training) == 1
    test = x.copy()
    test.iloc[1000:1050] = float(test.iloc[1000, 0])                    # a missing cycle
    parts = detector.score_components(test)
    assert list(parts.columns)[-2:] == ["discord", "shape discord"]
    assert 1000 - 128 <= int(np.argmax(parts["shape discord"].to_numpy())) <= 1050 + 128
    pd.testing.assert_frame_equal(parts, detector.score_components(test))
    off = TraceAnomalyDetector(discords=False, **fast).fit(x)
    assert off.shape_discords_ is None and "shape discord" not in off.score_components(test).columns


def test_a_discord_flags_its_burst_not_the_subsequences_that_cover_it():
    """A discord distance is the mean over the 128-step subsequences covering a step, so a
    5-step burst lifted the evidence, and the flags, over up to 259 steps; each flagged run
    is narrowed to its core. The scores are the same either way."""
    t = np.arange(800)
    x = pd.DataFrame({"v": np.sin(t / 6)}, index=pd.date_range("2020", periods=800, freq="h"))
    burst = x.copy()
    burst.iloc[600:605] += 3.0
    detector = TraceAnomalyDetector(max_windows=64, random_state=0).fit(x.iloc[:500])
    found = detector.predict_anomaly_segments(burst)
    assert len(found) == 1 and found["component"].iloc[0] == "shape discord"
    run = found["ilocs"].iloc[0]
    assert run.left <= 600 and run.right >= 605 and run.length == 17
    steps = detector._step_scores(burst)
    assert (steps.strongest_evidence() > detector.threshold_).sum() > 200   # the spread the flags undo
    near_end, near_start = x.copy(), x.iloc[300:].copy()   # every subsequence over the steps after it holds it
    near_end.iloc[760:765] += 3.0
    near_start.iloc[50:55] += 3.0
    for data, start in ((near_end, 760), (near_start, 50)):
        found = detector.predict_anomaly_segments(data)
        assert len(found) == 1
        run = found["ilocs"].iloc[0]
        assert run.left <= start + 4 and run.right > start and run.length <= 2 * 8 + 1


def test_flag_narrowing_keeps_edge_runs_to_the_pointwise_evidence():
    """Near either end of the series the discords' minimum sees one side only: their core
    there is set aside; the pointwise evidence places the run, and gaps under 8 steps close."""
    from trace_forecast.tasks.anomaly import StepScores, bridged, edge_runs

    flags = np.array([1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1], bool)
    np.testing.assert_array_equal(edge_runs(flags), [1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(bridged(flags, 2), [1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1, 1, 1])
    T = 600
    pointwise = np.zeros((T, 1))
    pointwise[560:565] = 2.0                                  # the burst, under the threshold of 3
    discord = np.zeros((T, 1))
    discord[440:] = 5.0                                       # its subsequences' spread, up to the end
    steps = StepScores({"reconstruction": pointwise, "discord": discord}, {"reconstruction": pointwise, "discord": discord})
    flagged = np.flatnonzero(steps.flags(3.0))
    assert flagged.min() == 552 and flagged.max() == 568     # 8 steps either side of the burst's first step


def test_forced_discords_stay_out_of_a_series_too_short_to_calibrate_them():
    """Fewer than 8 discord-length subsequences give training distances no spread: a forced
    ``discords=True`` scored new normal data at 10^12 units; the discords now stay out."""
    fast = {"context_length": 64, "max_epochs": 1, "max_windows": 32, "batch_size": 16, "random_state": 0}
    detector = TraceAnomalyDetector(discords=True, **fast).fit(pd.DataFrame({"x": np.sin(np.arange(130) / 5)}))
    assert detector.discords_ is None and detector.shape_discords_ is None
    assert detector.transform_scores(pd.DataFrame({"x": np.sin(np.arange(400) / 5)}))["scores"].max() < 100
