"""The benchmark code: the M4 reference baseline and the report generator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import data_path


@pytest.mark.data
def test_naive2_reproduces_the_official_m4_hourly_figures():
    data_path("forecasting", "M4", "Hourly-train.csv")
    from benchmarks import m4

    histories, futures = m4.load_m4_hourly()
    pred = np.stack([m4.naive2(h) for h in histories])
    smape, mase = m4.scores(histories, futures, pred)
    # M4 competition, Naive2 on the hourly subset: sMAPE 18.383, MASE 2.395
    assert smape == pytest.approx(18.383, abs=5e-3)
    assert mase == pytest.approx(2.395, abs=5e-3)


def test_report_tables_and_ratios():
    from benchmarks import report

    rows = []
    for h, scale in ((96, 1.0), (192, 2.0)):
        for method, params, mse in (("TRACE", 100, 0.40), ("linear probing", 1000, 0.50), ("full fine-tuning", 10000, 0.45)):
            rows.append({"dataset": "ETTh1", "horizon": h, "method": method, "seed": 0, "mse": mse * scale,
                         "mae": mse, "trainable_parameters": params * scale, "test_windows": 10,
                         "fit_seconds": 2.0 if method == "TRACE" else 4.0, "predict_windows_per_s": 100.0,
                         "peak_rss_mb": 500.0})
    text = report.long_horizon_section(pd.DataFrame(rows))
    assert "| TRACE | 0.400 / 0.400 | 0.800 / 0.400 | 100–200 |" in text
    assert "10.0 %" in text and "1.00 %" in text and "0.800" in text  # params and MSE ratios vs LP / full FT
    cost = report.cost_section(pd.DataFrame(rows))
    assert "| linear probing | 4.0 | 2.00 |" in cost


def test_ablation_sections_render_means_spreads_and_gaps(tmp_path, monkeypatch):
    import json

    from benchmarks import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert report.dsic_ablation_section() is None and report.backbone_ablation_section() is None
    rows = [{"dataset": d, "variant": v, "seed": s, "metric": m, "value": base + 0.01 * s, "fit_seconds": 1.0,
             "trainable_parameters": 1234}
            for d, m, base in (("ETTh1", "MSE", 0.37), ("M4", "OWA", 0.66))
            for v in ("Gated DSIC", "head only") for s in (0, 1, 2)]
    (tmp_path / "dsic_ablation.json").write_text(json.dumps(
        {"training": {"learning_rate": 1e-3, "max_windows": 4096, "max_epochs": 2}, "rows": rows}))
    text = report.dsic_ablation_section()
    assert "| Gated DSIC | 1,234 | 0.3800 ± 0.0100 | 0.6700 ± 0.0100 |" in text and "ETTh1 MSE" in text
    rows = [{"dataset": "ETTh1", "horizon": 96, "backbone": b, "future_patches": fp, "mse": mse, "fit_seconds": 1.0}
            for b, fp, mse in (("pretrained", "auto", 0.40), ("random", "auto", 0.44),
                               ("pretrained", 0, 0.41), ("random", 0, 0.45))]
    (tmp_path / "backbone_ablation.json").write_text(json.dumps({"rows": rows}))
    assert "| ETTh1 | 96 | 0.400 | 0.440 | 0.410 | 0.450 | +10.0 % |" in report.backbone_ablation_section()
    rows = [{"series": "airline", "length": 144, "horizon": 12, "method": m, "mape": v, "seconds_per_fold": 0.5}
            for m, v in (("TraceForecaster() default", 0.06), ("seasonal naive", 0.09))]
    (tmp_path / "small_data.json").write_text(json.dumps({"rows": rows}))
    text = report.small_data_section()
    assert "| airline | 144 | 12 | 0.060 | 0.090 |" in text and "| mean |  |  | 0.060 | 0.090 |" in text


def test_scaling_section_renders_ratios_and_the_linear_fit(tmp_path, monkeypatch):
    import json

    from benchmarks import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert report.scaling_section() is None
    rows = [{"run": r, "seconds": s, "ratio_to_sequential": s / 10, "scores_equal_sequential": True}
            for r, s in (("sequential", 10.0), ("multiprocessing", 6.0))]
    (tmp_path / "parallel_evaluate.json").write_text(json.dumps({"cores": 2, "case": "c", "rows": rows}))
    many = {"rows": [{"series": n, "fit_seconds": 2.0, "predict_seconds": n / 1000, "predict_ms_per_series": 1.0}
                     for n in (100, 1000)],
            "linear_fit": {"seconds_per_series": 0.001, "intercept_s": 0.0, "r2": 1.0}, "log_log_exponent": 1.0,
            "length": 200, "context": 64, "horizon": 24}
    (tmp_path / "many_series.json").write_text(json.dumps(many))
    text = report.scaling_section()
    assert "| multiprocessing | 6.0 s | 0.60x | yes |" in text
    assert "1.00 ms per series, R² 1.000" in text and "| 1,000 | 2.00 | 1.000 | 1.00 |" in text
