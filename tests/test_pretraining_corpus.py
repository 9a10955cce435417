"""The real pretraining corpus: every source loads, held-out slices follow the rules, the
mixture draws by weight and at several resolutions, and pretraining runs on it."""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd
import pytest

from trace_forecast.errors import DataError
from trace_forecast.pretraining.corpus import (
    LONG_SERIES,
    SOURCE_NAMES,
    clean,
    default_weights,
    load_corpus,
    read_tsf,
    split_heldout,
)
from trace_forecast.pretraining.mixture import SourceMixture, coarse_stretch


def test_clean_interpolates_gaps_and_drops_unusable_series():
    x = clean([np.nan, 1.0, np.nan, 3.0] + list(range(20)) + [np.inf, np.nan])
    assert x.dtype == np.float32 and len(x) == 23 and x[1] == pytest.approx(2.0)
    assert clean(np.ones(100)) is None  # constant
    assert clean(np.arange(10.0)) is None  # too short


def test_read_tsf_from_a_zip(tmp_path):
    text = "@relation x\n@attribute series_name string\n@data\nT1:1,2,3,?,5,6,7,8,9,10,11,12,13,14,15,16,17\nT2:1\n"
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as archive:
        archive.writestr("d.tsf", text)
    (series,) = read_tsf(tmp_path / "d.zip")
    assert len(series) == 17 and series[3] == pytest.approx(4.0)


def test_split_heldout_keeps_tails_of_long_and_whole_short_series():
    rng = np.random.default_rng(0)
    long = [rng.normal(size=LONG_SERIES + 1000).astype(np.float32) for _ in range(2)]
    short = [rng.normal(size=100).astype(np.float32) for _ in range(40)]
    train, held = split_heldout(long + short, seed=0)
    assert len(held) == 2 + 2  # two tails and 5 % of the 40 short series
    for s, t, h in zip(long, train[:2], held[:2], strict=True):
        np.testing.assert_array_equal(np.concatenate([t, h]), s)  # the tail, nothing overlaps
        assert len(h) == len(s) - int(len(s) * 0.9)
    assert len(train) == 2 + 38
    assert split_heldout(long + short, seed=0)[1][2].tobytes() == held[2].tobytes()  # seeded


def test_mixture_draws_by_weight_and_coarsens():
    groups = {"a": [np.arange(20000, dtype=np.float32)], "b": [np.ones(50, dtype=np.float32)]}
    mix = SourceMixture(groups, {"a": 3.0, "b": 1.0}, coarse_share=0.5)
    assert mix.share() == pytest.approx({"a": 0.75, "b": 0.25})
    rng = np.random.default_rng(0)
    draws = [mix.draw(rng) for _ in range(2000)]
    assert np.mean([name == "a" for name, _ in draws]) == pytest.approx(0.75, abs=0.03)
    coarse = [s for name, s in draws if name == "a" and len(s) < 20000]
    assert 0.4 < len(coarse) / sum(name == "a" for name, _ in draws) < 0.6
    stretch = coarse_stretch(np.arange(100.0), 4, 10, np.random.default_rng(1))
    assert len(stretch) == 10 and np.all(np.diff(stretch) == 4.0)  # block means of a ramp
    with pytest.raises(ValueError, match="at least one"):
        SourceMixture({"a": []}, {"a": 1.0})


def test_missing_and_unknown_sources(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_corpus(tmp_path / "missing")
    with pytest.raises(DataError, match="unknown pretraining sources"):
        load_corpus(tmp_path, ["nope"])
    with pytest.raises(DataError, match="'pjm' is missing"):
        load_corpus(tmp_path, ["pjm"])


def test_pretraining_on_the_corpus_reports_heldout_loss_per_source(tmp_path):
    from trace_forecast.pretrain import main

    data = tmp_path / "data" / "M4"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [[f"W{i}", *np.sin(np.arange(300) / 7 + i) + rng.normal(0, 0.1, 300)] for i in range(30)]
    pd.DataFrame(rows).to_csv(data / "Weekly-train.csv", index=False)
    pd.DataFrame([[f"W{i}", *rng.normal(size=13)] for i in range(30)]).to_csv(data / "Weekly-test.csv", index=False)
    summary = main(["--out", str(tmp_path / "run"), "--data-dir", str(tmp_path / "data"), "--corpus",
                    "--sources", "m4_weekly", "--synthetic", "20", "--batch-size", "4", "--d-model", "16",
                    "--layers", "1", "--d-ff", "32", "--heads", "2", "--device", "cpu", "--steps", "8",
                    "--checkpoint-every", "10", "--coarse-share", "0.3", "--max-tail-patches", "32", "--quiet"])
    assert set(summary["heldout_loss_by_source"]) == {"m4_weekly", "synthetic"}
    assert summary["corpus"]["m4_weekly"]["series"] == 30
    assert summary["corpus"]["synthetic"]["share"] == pytest.approx(0.2)
    assert all(np.isfinite(v) for v in summary["heldout_loss_by_source"].values())


@pytest.mark.slow
def test_every_shared_source_loads():
    from conftest import data_path

    corpus = load_corpus(data_path("pretraining"))
    assert list(corpus) == list(SOURCE_NAMES) and len(SOURCE_NAMES) == 18
    total = 0
    for name, series in corpus.items():
        assert series and all(s.dtype == np.float32 and np.isfinite(s).all() and len(s) >= 16 for s in series), name
        train, held = split_heldout(series)
        assert train and held, name
        total += sum(map(len, series))
    assert total > 15_000_000  # 15.4 M after cleaning (capacity, total and id columns dropped)
    weights = default_weights(corpus)
    assert sum(weights.values()) == pytest.approx(1.0) and max(weights.values()) < 0.2
