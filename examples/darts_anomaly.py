"""A Darts anomaly pipeline: TraceAnomalyScorer scores, a ``darts.ad`` detector labels.

The scorer fine-tunes the foundation model on ETTh1's clean training months, scores a
later stretch with injected anomalies (a level shift and a noise burst), and Darts'
``QuantileDetector`` turns the scores into binary labels; ``darts.ad.utils`` metrics
evaluate both against the injected truth.

Run: ``python examples/darts_anomaly.py`` (about 30 s on 2 CPU cores).
"""

import numpy as np
from darts import TimeSeries
from darts.ad import QuantileDetector
from darts.ad.utils import eval_metric_from_binary_prediction, eval_metric_from_scores

from trace_forecast.darts import TraceAnomalyScorer
from trace_forecast.datasets import load_etth1

TRAIN = 12 * 30 * 24


def main() -> dict:
    frame = load_etth1()[["OT"]].iloc[: TRAIN + 60 * 24]
    values = frame.to_numpy(dtype="float32").copy()
    labels = np.zeros(len(values), dtype="float32")
    scale = float(values[:TRAIN].std())
    rng = np.random.default_rng(0)
    values[TRAIN + 300:TRAIN + 348] += 2 * scale  # level shift, 2 days
    values[TRAIN + 900:TRAIN + 960] += rng.normal(0, 1.5 * scale, (60, 1)).astype("float32")  # noise burst
    labels[TRAIN + 300:TRAIN + 348] = labels[TRAIN + 900:TRAIN + 960] = 1
    series = TimeSeries.from_times_and_values(frame.index, values)
    truth = TimeSeries.from_times_and_values(frame.index, labels)
    train, test, test_truth = series[:TRAIN], series[TRAIN:], truth[TRAIN:]

    scorer = TraceAnomalyScorer(random_state=0).fit(train)
    scores = scorer.score(test)
    detector = QuantileDetector(high_quantile=0.97).fit(scorer.score(train))
    flags = detector.detect(scores)

    auc = eval_metric_from_scores(test_truth, scores, metric="AUC_ROC")
    f1 = eval_metric_from_binary_prediction(test_truth, flags, metric="f1")
    print(f"ETTh1 OT, 60 days after the training months with 2 injected anomalies ({int(labels.sum())} steps)")
    print(f"  TraceAnomalyScorer AUC-ROC: {auc:.3f}")
    print(f"  QuantileDetector (97th percentile of training scores) F1: {f1:.3f}, "
          f"{int(flags.values().sum())} steps flagged")
    return {"auc": auc, "f1": f1}


if __name__ == "__main__":
    main()
