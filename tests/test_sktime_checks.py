"""sktime's own conformance suite, in full, on the tiny test configurations."""

from __future__ import annotations

import pytest

from trace_forecast import TraceAnomalyDetector, TraceForecaster

# The forecaster's suite runs once per test configuration, so that the workers share it (about
# 50, 35 and 25 s in the suite instead of 90 s in one test). check_estimator on an instance runs the class's
# tests too: the three runs together cover every test-fixture pair of the run on the class
# (measured: 453 distinct pairs, the same set).
CASES = [(TraceForecaster, index) for index in range(len(TraceForecaster.get_test_params()))]
CASES.append((TraceAnomalyDetector, None))  # about 4 s: on the class, every configuration at once


def case_id(case) -> str:
    if isinstance(case, type):
        return case.__name__
    return "all" if case is None else f"params{case}"


# sktime's suite fits panels of 10-point series at 3-step horizons: our warnings that such
# series are short for training and for calibrating intervals are expected there.
@pytest.mark.filterwarnings("ignore::trace_forecast.errors.ShortSeriesWarning")
@pytest.mark.filterwarnings("ignore::trace_forecast.errors.UncalibratedIntervalsWarning")
@pytest.mark.slow
@pytest.mark.parametrize(("estimator", "index"), CASES, ids=case_id)
def test_check_estimator(estimator, index):
    from sktime.utils.estimator_checks import check_estimator

    target = estimator if index is None else estimator(**estimator.get_test_params()[index])
    results = check_estimator(target, raise_exceptions=False, verbose=False)
    failed = {name: str(outcome)[:300] for name, outcome in results.items() if outcome != "PASSED"}
    assert len(results) > 50
    assert not failed, failed
