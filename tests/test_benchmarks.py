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
    mixed = report.cost_section(pd.DataFrame(rows), one_machine=False)  # rows re-run elsewhere: no ratios
    assert "| linear probing | 4.0 | 100 | 500 |" in mixed and "vs TRACE" not in mixed


def test_profile_pages_name_the_rows_run_on_another_machine(tmp_path, monkeypatch):
    from benchmarks import harness, report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    result = {"benchmark": "long_horizon", "protocol": {}, "environment": {}, "seconds": 1, "rows": [],
              "summary": {}}
    (tmp_path / "long_horizon_standard.json").write_text(harness.dumps(result))
    assert report.other_machines("long_horizon", "standard") is None
    result["summary"]["other_machines"] = [{"what": "the TRACE rows", "cpu_model": "AMD EPYC", "threads": 1,
                                            "date": "2026-12-07"}]
    (tmp_path / "long_horizon_standard.json").write_text(harness.dumps(result))
    assert report.other_machines("long_horizon", "standard") == (
        "Rows run on another machine: the TRACE rows (AMD EPYC, 1 thread(s), 2026-12-07).")


def test_ablation_sections_render_means_spreads_and_gaps(tmp_path, monkeypatch):
    import json

    from benchmarks import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert report.dsic_ablation_section() is None and report.backbone_ablation_section() is None
    rows = [{"dataset": d, "variant": v, "seed": s, "metric": m, "value": base + 0.01 * s, "fit_seconds": 1.0,
             "trainable_parameters": 1234 if v == "head only" or (d == "ETTh1" and s > 0) else 2345}
            for d, m, base in (("ETTh1", "MSE", 0.37), ("M4", "OWA", 0.66))
            for v in ("Gated DSIC", "head only") for s in (0, 1, 2)]
    (tmp_path / "dsic_ablation.json").write_text(json.dumps(
        {"protocol": {"training": {"learning_rate": 1e-3, "max_windows": 4096, "max_epochs": 2}}, "rows": rows}))
    text = report.dsic_ablation_section()
    # in brackets: the fits whose adapters validation kept (more trainable parameters than the head alone)
    assert "| Gated DSIC | 0.3800 ± 0.0100 (1/3) | 0.6700 ± 0.0100 (3/3) |" in text and "ETTh1 MSE" in text
    rows = [{"dataset": "ETTh1", "horizon": 96, "backbone": b, "future_patches": fp, "mse": mse, "fit_seconds": 1.0}
            for b, fp, mse in (("pretrained", "auto", 0.40), ("random", "auto", 0.44),
                               ("pretrained", 0, 0.41), ("random", 0, 0.45))]
    (tmp_path / "backbone_ablation.json").write_text(json.dumps({"rows": rows}))
    assert "| ETTh1 | 96 | 0.400 | 0.440 | 0.410 | 0.450 | +10.0 % |" in report.backbone_ablation_section()
    rows = [{"series": "airline", "length": 144, "horizon": 12, "method": m, "mape": v, "seconds_per_fold": 0.5}
            for m, v in (("TraceForecaster() default", 0.06), ("seasonal naive", 0.09))]
    text = report.small_data_section(pd.DataFrame(rows), "python -m benchmarks.small_data")
    assert "| airline | 144 | 12 | 0.060 | 0.090 |" in text and "| mean |  |  | 0.060 | 0.090 |" in text


def test_scaling_section_renders_ratios_and_the_linear_fit(tmp_path, monkeypatch):
    import json

    from benchmarks import report

    monkeypatch.setattr(report, "RESULTS", tmp_path)
    assert report.scaling_section() is None
    rows = [{"run": r, "seconds": s, "ratio_to_sequential": s / 10, "scores_equal_sequential": True}
            for r, s in (("sequential", 10.0), ("multiprocessing", 6.0))]
    (tmp_path / "parallel_evaluate.json").write_text(json.dumps({"protocol": {"cores": 2, "case": "c"}, "rows": rows}))
    many = {"rows": [{"series": n, "fit_seconds": 2.0, "predict_seconds": n / 1000, "predict_ms_per_series": 1.0}
                     for n in (100, 1000)],
            "summary": {"linear_fit": {"seconds_per_series": 0.001, "intercept_s": 0.0, "r2": 1.0},
                        "log_log_exponent": 1.0},
            "protocol": {"length": 200, "context": 64, "horizon": 24}}
    (tmp_path / "many_series.json").write_text(json.dumps(many))
    text = report.scaling_section()
    assert "| multiprocessing | 6.0 s | 0.60x | yes |" in text
    assert "1.00 ms per series, R² 1.000" in text and "| 1,000 | 2.00 | 1.000 | 1.00 |" in text


def test_revin_linear_baseline_recovers_a_linear_process():
    """The closed-form RevIN linear model is exact on a noiseless sum of sinusoids
    (every window is a linear recurrence of its past), whatever the level and scale."""
    from types import SimpleNamespace

    from benchmarks.long_horizon import run_revin_linear

    t = np.arange(1200)
    y = 50 + 10 * np.sin(2 * np.pi * t / 24) + 4 * np.sin(2 * np.pi * t / 7)
    frame = pd.DataFrame({"a": y, "b": 3 * y[::-1].copy()})
    split = SimpleNamespace(train=frame.iloc[:800], val=frame.iloc[800 - 64:1000])
    hist = np.stack([y[i : i + 64] for i in range(1000, 1100)]).astype(np.float32)
    fut = np.stack([y[i + 64 : i + 80] for i in range(1000, 1100)]).astype(np.float32)
    row = run_revin_linear(split, 16, hist, fut, lookback=64)
    assert row["mse"] < 1e-3 * y.var() and row["trainable_parameters"] == 65 * 16


def test_targets_section_says_met_or_missed_from_the_rows():
    from benchmarks import report

    lh = pd.DataFrame([{"dataset": "ETTh1", "horizon": h, "method": m, "seed": s, "mse": v + 0.001 * s}
                       for h in (96, 192) for s in (0, 1, 2)
                       for m, v in (("TRACE", 0.36 if h == 96 else 0.42), ("Darts NLinear", 0.38),
                                    ("RevIN linear", 0.37))])
    m4 = pd.DataFrame([{"method": m, "seed": s, "owa": v} for s in (0, 1)
                       for m, v in (("TRACE", 0.62), ("seasonal naive (24)", 0.628), ("Darts NLinear", 0.7))])
    small = pd.DataFrame([{"series": n, "method": m, "seed": 0, "mape": v}
                          for n, scale in (("airline", 1.0), ("shampoo", 3.0))
                          for m, v in (("TraceForecaster() default", 0.05 * scale), ("seasonal naive", 0.08),
                                       ("ThetaForecaster", 0.06))])
    text = report.targets_section(lh, m4, small)
    assert "- ETTh1, TRACE beats Darts NLinear and RevIN linear at every horizon: **missed**" in text
    assert "TRACE MSE ≤ 0.365 at H = 96: **met** (0.3610)" in text
    assert "OWA below seasonal naive's and NLinear's: **met**" in text
    assert "beats seasonal naive on every series: **missed**" in text  # shampoo 0.15 vs 0.08
    assert "beats Theta on average: **missed** (mean MAPE 0.100 vs 0.060)" in text


def test_backbone_targets_from_zero_shot_and_fine_tuned_rows():
    from benchmarks import report

    lh = pd.DataFrame([{"dataset": "ETTh1", "horizon": 96, "method": m, "seed": 0, "mse": v}
                       for m, v in (("TRACE", 0.366), ("TRACE zero-shot", 0.396))])
    m4 = pd.DataFrame([{"method": m, "seed": 0, "owa": v}
                       for m, v in (("TRACE", 0.55), ("TRACE zero-shot", 0.70), ("seasonal naive (24)", 0.628))])
    text = report.backbone_targets(lh, m4)
    assert "Zero-shot ETTh1 MSE ≤ 0.38 at H = 96: **missed** (0.3960)" in text
    assert "Fine-tuned ETTh1 MSE ≤ 0.360 at H = 96: **missed** (0.3660)" in text
    assert "Zero-shot M4 Hourly OWA below seasonal naive's: **missed** (0.700 vs 0.628)" in text
    assert "Fine-tuned M4 Hourly OWA ≤ 0.56: **met** (0.550)" in text
    assert report.backbone_targets(None, None) is None


def _benchmark_modules():
    import importlib
    from pathlib import Path

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    return [importlib.import_module(f"benchmarks.{p.stem}") for p in sorted(folder.glob("*.py"))
            if p.stem not in ("__init__", "harness") and "harness import" in p.read_text()]


def test_every_result_file_has_the_one_schema():
    from benchmarks.harness import RESULTS, load

    files = sorted(RESULTS.glob("*.json"))
    assert files and not list(RESULTS.glob("*.csv"))
    for path in files:
        result = load(path)
        assert set(result) == {"benchmark", "protocol", "environment", "seconds", "rows", "summary"}, path.name
        assert isinstance(result["rows"], list) and all(isinstance(r, dict) for r in result["rows"]), path.name


def test_a_record_resumes_and_replaces_rows_by_key(tmp_path):
    from benchmarks.harness import Record, load

    path = tmp_path / "r.json"
    record = Record(path, ("method", "seed"), "demo", {"stride": 4})
    record.add({"method": "a", "seed": 0, "mse": 1.0}, quiet=True)
    record.add({"method": "b", "seed": None, "curve": [1, 2, 3]}, quiet=True)
    record.summary["fit"] = {"slope": 0.5}
    record.add({"method": "a", "seed": 0, "mse": 0.5}, quiet=True)  # a rerun of the same arm replaces it
    again = Record(path, ("method", "seed"))
    assert again.done({"method": "b", "seed": None}) and not again.done({"method": "b", "seed": 1})
    result = load(path)
    assert result["rows"] == [{"method": "b", "seed": None, "curve": [1, 2, 3]}, {"method": "a", "seed": 0, "mse": 0.5}]
    assert result["protocol"] == {"stride": 4} and result["summary"] == {"fit": {"slope": 0.5}}
    # braces, the 4 fields, the rows list with its 2 rows, the summary with its 1 entry: a line each
    assert len(path.read_text().splitlines()) == 13


def test_only_a_benchmarks_own_result_file_writes_its_page(tmp_path, monkeypatch, capsys):
    import argparse
    import types

    from benchmarks import harness

    monkeypatch.setattr(harness, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(harness, "RESULTS", tmp_path / "results")
    (tmp_path / "docs").mkdir(), (tmp_path / "results").mkdir()
    module = types.ModuleType("benchmarks.demo")
    module.KEY, module.PAGE = ("arm",), "benchmarks_demo.md"
    module.run = lambda args, record: record.add({"arm": "a", "mse": 0.5}, quiet=True)
    module.page = lambda result: f"# Demo\n\n{len(result['rows'])} rows"
    side = argparse.Namespace(out=tmp_path / "smoke.json", fresh=False, report=False)
    harness.execute(module, side)                        # a smoke run elsewhere: the page is printed only
    assert not (tmp_path / "docs" / "benchmarks_demo.md").exists() and "1 rows" in capsys.readouterr().out
    harness.execute(module, argparse.Namespace(out=None, fresh=False, report=False))
    assert (tmp_path / "docs" / "benchmarks_demo.md").read_text().endswith("1 rows\n")


def test_every_benchmark_runs_through_the_runner():
    from benchmarks.harness import parser_for

    for module in _benchmark_modules():
        if module.__name__ in ("benchmarks.run", "benchmarks.report"):
            continue
        assert callable(getattr(module, "run", None)), module.__name__
        parser_for(module).parse_args([])  # every option has a default


def test_generated_pages_reproduce_from_their_results(tmp_path):
    from benchmarks.harness import DOCS, RESULTS, load, page_text

    checked = 0
    for module in _benchmark_modules():
        if not hasattr(module, "page"):
            continue
        path = RESULTS / f"{module.__name__.rsplit('.', 1)[-1]}.json"
        assert path.exists(), f"{path.name} is committed with its page"
        assert page_text(module, load(path), path) == (DOCS / module.PAGE).read_text(), module.PAGE
        checked += 1
    assert checked >= 3


def test_missing_value_settings_remove_what_they_say():
    from benchmarks.missing_values import missing_mask

    assert not missing_mask((1000, 3), "complete").any()
    assert missing_mask((20000, 2), "30 % at random").mean() == pytest.approx(0.3, abs=0.01)
    runs = missing_mask((5000, 2), "runs of 168")
    assert 0.1 <= runs[:, 0].mean() < 0.2
    starts = np.flatnonzero(np.diff(runs[:, 0].astype(int)) == 1)
    assert len(starts) <= 4, "gaps come as long runs"


def test_an_arm_setting_comes_back_after_the_block_even_when_it_fails():
    from benchmarks.harness import setting
    from trace_forecast.heads import reconstruction

    before = reconstruction.SIGN_SYMMETRIC_ZERO_SHOT
    with setting(reconstruction, "SIGN_SYMMETRIC_ZERO_SHOT", not before):
        assert reconstruction.SIGN_SYMMETRIC_ZERO_SHOT is (not before)
    assert reconstruction.SIGN_SYMMETRIC_ZERO_SHOT is before
    fine_tune = reconstruction.SIGN_SYMMETRIC_FINE_TUNE
    with pytest.raises(RuntimeError), setting(reconstruction, "SIGN_SYMMETRIC_FINE_TUNE", not fine_tune):
        raise RuntimeError("an arm that fails")
    assert reconstruction.SIGN_SYMMETRIC_FINE_TUNE is fine_tune


def test_every_data_size_arm_setting_names_a_design_constant():
    """Each side arm flips a constant that exists (a renamed one would otherwise be set on
    nothing and the arm would silently run the default), and puts it back."""
    import importlib

    from benchmarks.data_size import ARM_SETTINGS, arm_setting, random_walks

    for method, flips in ARM_SETTINGS.items():
        modules = {q: importlib.import_module(f"trace_forecast.heads.{q.split('.')[0]}") for q in flips}
        before = {q: getattr(modules[q], q.split(".")[1]) for q in flips}
        with arm_setting(method):
            assert all(getattr(modules[q], q.split(".")[1]) == v for q, v in flips.items()), method
        assert all(getattr(modules[q], q.split(".")[1]) == v for q, v in before.items()), method
    walks = random_walks(steps=300)
    assert walks.shape == (300, 8) and (walks > 0).all().all() and walks.equals(random_walks(steps=300))


def test_a_suite_run_as_a_module_writes_its_own_result_file(monkeypatch):
    """``python -m benchmarks.long_horizon`` names its results after the suite, not ``__main__``."""
    import argparse
    import importlib.machinery
    import sys
    import types

    from benchmarks.harness import suite_runner

    main = types.ModuleType("__main__")
    main.__spec__ = importlib.machinery.ModuleSpec("benchmarks.long_horizon", None)
    monkeypatch.setitem(sys.modules, "__main__", main)
    _, _, result_name, _ = suite_runner("__main__", lambda *args, **kwargs: None)
    assert result_name(argparse.Namespace(profile="quick")) == "long_horizon_quick"


def test_a_candidate_backbone_replaces_the_embedded_one_only_outside_committed_results(tmp_path, monkeypatch):
    import argparse
    import shutil
    import types

    from benchmarks import harness
    from trace_forecast.backbone import io

    monkeypatch.setattr(harness, "RESULTS", tmp_path / "results")
    monkeypatch.setattr(io, "EMBEDDED_DIR", io.EMBEDDED_DIR)  # restored after the test
    module = types.ModuleType("benchmarks.demo")
    module.KEY = ("arm",)
    module.run = lambda args, record: record.add({"arm": "a", "folder": str(io.resolve_checkpoint(None))}, quiet=True)
    candidate = tmp_path / "candidate"
    with pytest.raises(SystemExit, match="no config.json or model.safetensors"):
        harness.execute(module, argparse.Namespace(out=tmp_path / "c.json", fresh=False, report=False,
                                                   embedded=candidate))
    shutil.copytree(io.EMBEDDED_DIR, candidate)
    with pytest.raises(SystemExit, match="needs --out"):
        harness.execute(module, argparse.Namespace(out=None, fresh=False, report=False, embedded=candidate))
    result = harness.execute(module, argparse.Namespace(out=tmp_path / "c.json", fresh=False, report=False,
                                                        embedded=candidate))
    assert result["rows"][0]["folder"] == str(candidate.resolve())
    assert result["protocol"]["backbone"].startswith(str(candidate))


def test_a_run_of_some_anomaly_suites_keeps_the_other_suites_threshold_lines():
    from benchmarks.anomaly_suite import merged_lines, threshold_table

    def outcomes(caught: float) -> list[dict]:
        return [{"benchmark": b, "discords": d, "multiple": m, "caught": caught, "caught_after_fit": caught,
                 "false_alarm": 0.1} for b in ("NAB", "UCR", "WSD") for d in ("auto", "False")
                for m in ((0.5, 1.0) if d == "auto" else (1.0,))]

    old, new = threshold_table(outcomes(0.2)), threshold_table(outcomes(0.6))
    merged = merged_lines(old, new, {"NAB", "WSD"})
    assert merged.count("\n") == old.count("\n")
    assert "| UCR | auto | 20% |" in merged and "| NAB | auto | 60% |" in merged and "| WSD | False | 60% |" in merged
    assert "| UCR | 20% / 10% | 20% / 10% |" in merged and "| NAB | 60% / 10% |" in merged
    assert merged_lines(old, new, set()) == old and merged_lines(old, new, {"NAB", "UCR", "WSD"}) == new


def test_the_spike_components_whole_suite_means_replace_only_the_gated_series(tmp_path, monkeypatch):
    import benchmarks.harness as harness
    from benchmarks.harness import dumps
    from benchmarks.spikes import whole_suite

    suite = [{"dataset": f"WSD {k}", "benchmark": "WSD", "split": "tuning", "method": "TRACE [package default]",
              "vus_pr": 0.2 * k, "auc_roc": 0.5, "f1": 0.1} for k in (1, 2, 3)]
    suite.append({**suite[0], "method": "KMeansAD (Darts KMeansScorer)", "vus_pr": 0.9})  # not the default: left out
    (tmp_path / "anomaly_suite.json").write_text(dumps({"benchmark": "anomaly_suite", "rows": suite}))
    monkeypatch.setattr(harness, "RESULTS", tmp_path)
    gated = [{"series": "WSD 2", "method": m, "vus_pr": v, "auc_roc": 0.8, "f1": 0.1, "caught": c, "false_alarm": 1.0}
             for m, v, c in (("TRACE (default)", 0.4, 0.0), ('TRACE (spikes="auto")', 1.0, 0.5))]
    out = whole_suite(gated)["tuning WSD"]
    assert (out["series"], out["gated"]) == (3, 1)
    assert out["TRACE (default)"]["vus_pr"] == pytest.approx(0.4)  # (0.2 + 0.4 + 0.6) / 3
    assert out['TRACE (spikes="auto")']["vus_pr"] == pytest.approx(0.6)  # (0.2 + 1.0 + 0.6) / 3
    assert out['TRACE (spikes="auto")']["auc_roc"] == pytest.approx(0.6)  # (0.5 + 0.8 + 0.5) / 3
    assert out['TRACE (spikes="auto")']["gated_caught"] == 0.5 and out["TRACE (default)"]["gated_caught"] == 0.0
