"""sktime's own conformance suite, in full, on the tiny test configurations."""

from __future__ import annotations

import pytest

from trace_forecast import TraceAnomalyDetector, TraceForecaster


# sktime's suite fits panels of 10-point series at 3-step horizons: our warnings that such
# series are short for training and for calibrating intervals are expected there.
@pytest.mark.filterwarnings("ignore::trace_forecast.errors.ShortSeriesWarning")
@pytest.mark.filterwarnings("ignore::trace_forecast.errors.UncalibratedIntervalsWarning")
@pytest.mark.slow
@pytest.mark.parametrize("estimator", [TraceForecaster, TraceAnomalyDetector], ids=lambda e: e.__name__)
def test_check_estimator(estimator):
    from sktime.utils.estimator_checks import check_estimator

    results = check_estimator(estimator, raise_exceptions=False, verbose=False)
    failed = {name: str(outcome)[:300] for name, outcome in results.items() if outcome != "PASSED"}
    assert len(results) > 50
    assert not failed, failed
