"""One parameter layer: equal defaults across the four front ends, docs from one place,
and every bad value refused with the package's error before a backbone is loaded."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

from trace_forecast import TraceAnomalyDetector, TraceForecaster
from trace_forecast.darts import TraceAnomalyScorer, TraceModel
from trace_forecast.errors import DataError, ParameterError
from trace_forecast.parameters import DARTS_NAMES, PARAMETERS, default, registered_parameters

CLASSES = {
    "TraceForecaster": TraceForecaster,
    "TraceAnomalyDetector": TraceAnomalyDetector,
    "TraceModel": TraceModel,
    "TraceAnomalyScorer": TraceAnomalyScorer,
}
# What each front end takes, from its signature (Darts' learning rate is optimizer_kwargs["lr"]).
FRONT_ENDS = {
    name: registered_parameters(cls.__init__) + (("learning_rate",) if name == "TraceModel" else ())
    for name, cls in CLASSES.items()
}
# A path that raises CheckpointError if anything tries to load it.
UNLOADABLE = "/nonexistent/backbone-that-must-not-be-loaded"


def spelled(front_end: str, name: str) -> str:
    if front_end == "TraceAnomalyScorer":
        return DARTS_NAMES["score"] if name == "score" else name
    return DARTS_NAMES.get(name, name) if front_end == "TraceModel" else name


def signature_defaults(cls) -> dict:
    return {k: p.default for k, p in inspect.signature(cls.__init__).parameters.items()}


def _series(n: int = 200) -> pd.Series:
    t = np.arange(n)
    return pd.Series(10 + np.sin(t / 5) + 0.01 * t, index=pd.RangeIndex(n), dtype=float)


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_every_parameter_of_a_front_end_has_the_one_default(front_end):
    defaults = signature_defaults(CLASSES[front_end])
    for name in FRONT_ENDS[front_end]:
        if name == "learning_rate" and front_end == "TraceModel":
            continue  # Darts spells it optimizer_kwargs={"lr": ...}; checked below
        assert defaults[spelled(front_end, name)] == PARAMETERS[name].default, (front_end, name)


def test_shared_parameters_have_equal_defaults_across_front_ends():
    shared = set.intersection(*(set(names) for names in FRONT_ENDS.values()))
    assert {"backbone", "adapter", "lora_rank", "lora_targets", "dsic_budget", "dsic_interval", "dsic_draws",
            "dsic_warmup", "dsic_final", "max_epochs", "max_windows", "batch_size", "learning_rate",
            "context_length", "validation_fraction", "random_state"} <= shared
    darts_lr = TraceModel().pl_module_params["optimizer_kwargs"]["lr"]
    for name in shared:
        for front_end, cls in CLASSES.items():
            if name == "learning_rate" and front_end == "TraceModel":
                value = darts_lr
            else:
                value = signature_defaults(cls)[spelled(front_end, name)]
            assert value == default(name), (front_end, name, value)


@pytest.mark.parametrize("front_end", list(FRONT_ENDS))
def test_parameter_docs_come_from_the_one_place(front_end):
    cls = CLASSES[front_end]
    doc = inspect.getdoc(cls.__init__ if front_end == "TraceModel" else cls)
    assert "{parameter:" not in doc
    flat = " ".join(doc.split())
    for name in FRONT_ENDS[front_end]:
        if name == "learning_rate" and front_end == "TraceModel":
            continue
        entry = " ".join(PARAMETERS[name].numpydoc(spelled(front_end, name)).split())
        if front_end == "TraceModel" and name == "context_length":
            continue  # Darts' input_chunk_length also takes (min, max); documented by hand
        assert entry in flat, (front_end, name)


BAD_VALUES = [
    ("dsic_budget", 0.0), ("dsic_budget", 1), ("dsic_budget", 3), ("dsic_budget", 1.5), ("dsic_budget", True),
    ("dsic_warmup", 1.0), ("dsic_final", 0.0), ("dsic_interval", 0), ("dsic_draws", 0),
    ("max_epochs", -1), ("max_epochs", 0), ("max_epochs", float("inf")), ("max_epochs", 2.0),
    ("validation_fraction", 1.5), ("validation_fraction", 1.0), ("validation_fraction", -0.1),
    ("max_windows", 0), ("batch_size", 0), ("learning_rate", 0.0), ("learning_rate", float("nan")),
    ("lora_rank", 0), ("lora_targets", ["nope"]), ("lora_targets", "q"), ("adapter", "qlora"),
    ("random_state", -1), ("context_length", 0), ("backbone", 3),
]


def _sktime_fit(cls, **params):
    est = cls(**{"backbone": UNLOADABLE, **params})
    if cls is TraceForecaster:
        est.fit(_series(), fh=[1, 2])
    else:
        est.fit(pd.DataFrame({"x": _series().to_numpy()}))


@pytest.mark.parametrize("name,value", BAD_VALUES)
def test_bad_values_are_refused_before_the_backbone_loads(name, value):
    for front_end, cls in CLASSES.items():
        if name not in FRONT_ENDS[front_end]:
            continue
        key = spelled(front_end, name)
        kwargs = {key: value}
        if front_end == "TraceModel" and name == "learning_rate":
            key, kwargs = "optimizer_kwargs\\['lr'\\]", {"optimizer_kwargs": {"lr": value}}
        with pytest.raises(ParameterError, match=key):
            if front_end in ("TraceModel", "TraceAnomalyScorer"):
                extra = {"output_chunk_length": 4} if front_end == "TraceModel" else {}
                cls(**{"backbone": UNLOADABLE, **extra, **kwargs})  # refused at construction
            else:
                _sktime_fit(cls, **kwargs)  # refused at the start of fit


def test_fractions_and_counts_are_not_mixed():
    with pytest.raises(ParameterError, match="fraction in \\(0, 1\\] and must be a float, got the integer 1"):
        TraceForecaster(dsic_budget=1).fit(_series(), fh=[1])
    TraceModel(dsic_budget=1.0, output_chunk_length=4)  # all modules: fine


def test_rules_between_parameters():
    with pytest.raises(ParameterError, match="dsic_final .* must come after dsic_warmup"):
        TraceModel(dsic_warmup=0.5, dsic_final=0.4, output_chunk_length=4)


def test_context_length_is_checked_against_the_loaded_backbone():
    with pytest.raises(ParameterError, match="multiple of the backbone's patch length 8"):
        TraceForecaster(context_length=60).fit(_series(), fh=[1])
    with pytest.raises(ParameterError, match="at most its context 512"):
        TraceAnomalyDetector(context_length=1024).fit(pd.DataFrame({"x": _series().to_numpy()}))
    with pytest.raises(ParameterError, match="input_chunk_length .* multiple"):
        TraceModel(input_chunk_length=100, output_chunk_length=4)  # no longer rounded up silently


AIRLINE_START = [112.0, 118, 132, 129, 121, 135, 148, 148, 136, 119, 104]


@pytest.mark.parametrize("n", [2, 5, 6])
def test_too_short_to_learn_names_the_minimum(n):
    with pytest.raises(DataError, match="needs at least 7 observations"):
        TraceForecaster(context_length=32, max_epochs=1, random_state=0).fit(_series(n), fh=[1, 2, 3])


# Too short to hold out windows for interval calibration: the warning is asserted in test_calibration.
@pytest.mark.filterwarnings("ignore::trace_forecast.errors.UncalibratedIntervalsWarning")
@pytest.mark.parametrize("n", [7, 10, 11])
def test_short_series_forecast_near_their_level(n):
    """From ``horizon + 4`` observations a forecast is made (with a warning below
    ``horizon + 8``), and it stays near the series' level: no RevIN blow-up."""
    from trace_forecast.errors import ShortSeriesWarning

    y = pd.Series(AIRLINE_START[:n], index=pd.RangeIndex(n))
    forecaster = TraceForecaster(context_length=32, max_epochs=1, random_state=0)
    if n < 11:
        with pytest.warns(ShortSeriesWarning, match=f"use {n - 3} values of context"):
            forecaster.fit(y, fh=[1, 2, 3])
    else:
        forecaster.fit(y, fh=[1, 2, 3])
    pred = forecaster.predict()
    assert np.isfinite(pred.to_numpy()).all()
    assert pred.between(y.min() - 2 * y.std(), y.max() + 2 * y.std()).all(), pred.tolist()
