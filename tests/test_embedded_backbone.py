"""The shipped backbone is the pretrained one, loads offline, and the pretraining command works."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trace_forecast.backbone import MomentBackbone, load_backbone
from trace_forecast.backbone.io import EMBEDDED_DIR
from trace_forecast.engine.windows import left_pad
from trace_forecast.losses import masked_reconstruction_loss
from trace_forecast.network import random_patch_mask
from trace_forecast.pretraining.synthetic import generate_corpus

# Measured when the weights were committed (docs/model_card.md); a different file fails.
REFERENCE_LOSS = 0.33788347244262695  # v3 (v2: 0.3112; v3 trades synthetic fit for real data)
REFERENCE_LOSS_V4 = 0.3159218430519104  # the v4 campaign's snapshot after leg 23, opt-in by name


def reference_loss(model: MomentBackbone) -> float:
    """Masked-reconstruction loss on a fixed synthetic batch (seeded corpus and masks)."""
    series = generate_corpus(32, 512, 600, seed=123)
    pads = [left_pad(s[-512:], 512) for s in series]
    x = torch.from_numpy(np.stack([p[0] for p in pads]))[:, None, :]
    input_mask = torch.from_numpy(np.stack([p[1] for p in pads]))
    mask = random_patch_mask(input_mask, 8, 0.3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        return float(masked_reconstruction_loss(model.eval(), x, input_mask, mask))


def test_embedded_weights_are_the_pretrained_ones():
    model = load_backbone(None)
    loss = reference_loss(model)
    assert loss == pytest.approx(REFERENCE_LOSS, rel=1e-4)
    torch.manual_seed(0)
    assert reference_loss(MomentBackbone(model.config)) > 2 * loss  # random weights are far worse


def test_the_v4_snapshot_loads_by_name_and_the_default_stays_v3():
    from trace_forecast.backbone.io import EMBEDDED, resolve_checkpoint

    assert resolve_checkpoint(None) == EMBEDDED_DIR == EMBEDDED["trace-moment-tiny"]
    folder = resolve_checkpoint("trace-moment-tiny-v4")
    assert folder == EMBEDDED["trace-moment-tiny-v4"] != EMBEDDED_DIR
    assert json.loads((EMBEDDED_DIR / "config.json").read_text())["trace_forecast"]["version"] == 3
    v4 = json.loads((folder / "config.json").read_text())["trace_forecast"]
    assert v4["version"] == 4 and v4["campaign_leg"] == 23
    assert (folder / "model.safetensors").stat().st_size < 5_000_000
    assert reference_loss(load_backbone("trace-moment-tiny-v4")) == pytest.approx(REFERENCE_LOSS_V4, rel=1e-4)


def test_an_estimator_takes_the_v4_snapshot_by_name():
    from trace_forecast import TraceForecaster
    from trace_forecast.datasets import load_etth1

    y = load_etth1()["OT"].iloc[:600]
    forecasts = {name: TraceForecaster(backbone=name, context_length=512, fit_strategy="zero-shot")
                 .fit(y, fh=range(1, 25)).predict() for name in (None, "trace-moment-tiny-v4")}
    assert np.isfinite(forecasts["trace-moment-tiny-v4"]).all()
    assert not np.allclose(forecasts[None], forecasts["trace-moment-tiny-v4"])


def test_embedded_backbone_is_small_and_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = load_backbone(None)
    assert sum(p.numel() for p in model.parameters()) < 2_000_000
    assert (EMBEDDED_DIR / "model.safetensors").stat().st_size < 5_000_000
    cfg = json.loads((EMBEDDED_DIR / "config.json").read_text())
    assert cfg["seq_len"] == 512 and cfg["patch_len"] == 8


def test_pretraining_runs_a_few_steps_and_resumes(tmp_path):
    from trace_forecast.pretrain import main

    common = ["--out", str(tmp_path), "--synthetic", "20", "--batch-size", "4", "--d-model", "16",
              "--layers", "1", "--d-ff", "32", "--heads", "2", "--checkpoint-every", "2", "--device", "cpu"]
    first = main([*common, "--steps", "6", "--stop-after", "4"])
    assert first["steps"] == 4 and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert (tmp_path / "logs" / "version_0" / "metrics.csv").is_file()
    resumed = main([*common, "--steps", "6", "--resume"])
    assert resumed["steps"] == 6  # continued from step 4, not restarted
    reloaded = load_backbone(tmp_path)
    assert reloaded.config.d_model == 16
    made = json.loads((tmp_path / "config.json").read_text())["trace_forecast"]
    assert made["pretrained_by"] == "trace_forecast.pretrain" and made["steps"] == 6 and "from" not in made


def test_pretraining_data_folder_errors(tmp_path):
    from trace_forecast.errors import DataError
    from trace_forecast.pretrain import load_pretraining_series

    with pytest.raises(DataError, match="does not exist"):
        load_pretraining_series(tmp_path / "missing")
    with pytest.raises(DataError, match="no M4"):
        load_pretraining_series(tmp_path)


def test_pretraining_reads_the_shared_corpus():
    from conftest import data_path

    from trace_forecast.pretrain import load_pretraining_series

    series = load_pretraining_series(data_path("pretraining"))
    assert len(series) == 359 and all(np.isfinite(s).all() for s in series)


def test_synthetic_corpus_is_reproducible_and_varied():
    a = generate_corpus(30, 64, 700, seed=5)
    b = generate_corpus(30, 64, 700, seed=5)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert len({len(x) for x in a}) > 10
    scales = np.array([np.std(x) for x in a])
    assert scales.max() / scales.min() > 100


def test_pretraining_v2_options_and_time_budget(tmp_path):
    """The v2 recipe's options (docs/pretraining/pretrain_v2.sh) on a tiny model: a wall-time
    budget stops the run and anneals the rate; tails and mask ratios stay in range."""
    from trace_forecast.pretrain import main
    from trace_forecast.pretraining.module import TimeBudgetSchedule
    from trace_forecast.pretraining.windows import PretrainWindows

    summary = main(["--out", str(tmp_path), "--synthetic", "20", "--batch-size", "4", "--d-model", "16",
                    "--layers", "1", "--d-ff", "32", "--heads", "2", "--device", "cpu", "--steps", "100000",
                    "--time-budget", "0.05", "--max-tail-patches", "4", "--mask-ratio", "0.1", "0.5",
                    "--intermittent-share", "0.2", "--tail-share", "0.5", "--checkpoint-every", "1000"])
    assert 1 <= summary["steps"] < 100000 and summary["windows_seen"] == 4 * summary["steps"]
    assert load_backbone(tmp_path).config.d_model == 16

    series = generate_corpus(10, 600, 700, seed=1)
    windows = PretrainWindows(series, 200, 512, 8, mask_ratio=(0.1, 0.5), tail_share=0.5, max_tail_patches=4)
    hidden = [int((1 - windows[i][2]).sum()) // 8 for i in range(200)]
    assert max(hidden) <= 0.5 * 64 and min(hidden) >= 1

    schedule = TimeBudgetSchedule(budget_s=1e9, warmup_steps=10)
    assert schedule(0) == pytest.approx(0.1) and schedule(50) == pytest.approx(1.0, abs=1e-3)
    schedule.budget_s = 1e-9  # the budget is spent: the rate has annealed to its floor
    assert schedule(50) == pytest.approx(1e-3)


def test_a_campaign_leg_killed_and_resumed_ends_where_one_uninterrupted_run_does(tmp_path):
    """Two legs of a campaign (the first stopped at step 7 of 12, between checkpoints every
    3 steps) end with the same weights, moving average included, as one run of 12 steps:
    the checkpoint carries optimiser, schedule, moving average and the data stream's
    position. Each leg is on record in legs.json."""
    from safetensors.torch import load_file

    from trace_forecast.pretrain import main
    from trace_forecast.pretraining.campaign import export_weights, read_legs

    common = ["--synthetic", "20", "--batch-size", "4", "--d-model", "16", "--layers", "1", "--d-ff", "32",
              "--heads", "2", "--checkpoint-every", "3", "--device", "cpu", "--precision", "32-true",
              "--steps", "12", "--schedule", "constant", "--warmup-steps", "4", "--ema", "0.9", "--quiet"]
    main(["--out", str(tmp_path / "whole"), *common])
    # A leg's length counts from its own start (Lightning's max_time would stop a resumed leg at once).
    campaign = ["--out", str(tmp_path / "legs"), "--campaign", str(tmp_path / "campaign"), "--max-minutes", "30"]
    first = main([*campaign, *common, "--stop-after", "7"])
    second = main([*campaign, *common])
    assert (first["windows_seen"], second["windows_seen"]) == (28, 48)
    whole, legs = (load_file(tmp_path / name / "model.safetensors") for name in ("whole", "legs"))
    assert all(torch.equal(whole[k], legs[k]) for k in whole)
    record = read_legs(tmp_path / "campaign")
    assert [(r["steps_start"], r["steps_end"], r["status"]) for r in record] == [(0, 7, "finished"),
                                                                                  (7, 12, "finished")]
    assert record[1]["windows_start"] == 28 and record[1]["hardware"]["precision"] == "32-true"
    assert not list((tmp_path / "campaign").glob("*.tmp"))  # written through a rename
    # The checkpoint's exported weights (the moving average) are the leg's exported backbone.
    exported = export_weights(tmp_path / "campaign" / "checkpoint.ckpt", tmp_path / "exported", tmp_path / "legs")
    assert all(torch.equal(legs[k], v) for k, v in load_file(exported / "model.safetensors").items())

    # A cool-down leg continues the same checkpoint and stops where its decay reaches 0.
    cooled = main([*campaign, *common, "--steps", "16", "--cooldown", "12", "4"])
    assert cooled["steps"] == 16 and read_legs(tmp_path / "campaign")[2]["steps_start"] == 12
    state = torch.load(tmp_path / "campaign" / "checkpoint.ckpt", map_location="cpu", weights_only=True)
    assert state["lr_schedulers"][0]["_last_lr"] == [0.0]  # the checkpoint had no cool-down; the run's applies


def test_cooldown_decays_the_constant_rate_to_zero():
    """Warm-up, constant, then 1 - sqrt(progress) from the cool-down's first step."""
    from trace_forecast.pretraining.module import ConstantSchedule, PretrainModule

    schedule = ConstantSchedule(warmup_steps=4, cooldown=(100, 16))
    assert [schedule(s) for s in (0, 3, 99, 100)] == [0.25, 1.0, 1.0, 1.0]
    assert schedule(104) == pytest.approx(0.5) and schedule(116) == 0.0 and schedule(200) == 0.0
    with pytest.raises(ValueError, match="constant"):
        PretrainModule(MomentBackbone.__new__(MomentBackbone), schedule="one-cycle", cooldown=(1, 1))


def test_the_forecast_check_hides_only_tails_and_averages_the_real_sources():
    """The held-out forecasting check a campaign leg records: windows that hide their last
    1-12 patches and nothing else, scored per source, averaged over the real sources."""
    from trace_forecast.backbone import MomentBackbone
    from trace_forecast.pretraining.mixture import SourceMixture
    from trace_forecast.pretraining.module import FORECAST_CHECK_WINDOWS, build_config, forecast_check
    from trace_forecast.pretraining.windows import PretrainWindows

    rng = np.random.default_rng(0)
    groups = {name: [rng.normal(size=700).cumsum().astype(np.float32)] for name in ("a", "b", "synthetic")}
    held = SourceMixture(groups, dict.fromkeys(groups, 1.0))
    torch.manual_seed(0)
    backbone = MomentBackbone(build_config(d_model=16, layers=1, d_ff=32, heads=2))
    check = forecast_check(backbone, held, 512, n_windows=6)
    losses = check["by_source"]
    assert set(losses) == {"a", "b", "synthetic"} and all(np.isfinite(v) for v in losses.values())
    assert check["mean_over_real_sources"] == round((losses["a"] + losses["b"]) / 2, 4)
    windows = PretrainWindows(groups["a"], 6, 512, 8, seed=12345, **FORECAST_CHECK_WINDOWS)
    for _, _, mask in (windows[i] for i in range(len(windows))):
        hidden = (mask == 0).nonzero().flatten()
        assert 8 <= len(hidden) <= 96 and hidden[-1] == 511 and len(hidden) == 512 - int(hidden[0])


def test_the_short_forecast_check_reads_64_to_256_observed_steps():
    """The short-context forecasting check: every window left-padded to 64-256 observed steps
    (what a short series or ``context_length`` gives the zero-shot forecast), its tail hidden.
    The pretraining stream itself is unchanged by the option: a campaign resumes on the same
    windows (the fingerprint was taken before ``short_share`` existed)."""
    import hashlib

    from trace_forecast.pretraining.module import SHORT_FORECAST_CHECK_WINDOWS
    from trace_forecast.pretraining.windows import PretrainWindows

    rng = np.random.default_rng(1)
    series = [rng.normal(size=n).astype(np.float32) for n in (100, 700, 2000)]
    short = PretrainWindows(series[1:], 64, 512, 8, seed=3, **SHORT_FORECAST_CHECK_WINDOWS)
    observed = [int(m.sum()) for _, m, _ in (short[i] for i in range(64))]
    assert 64 <= min(observed) and max(observed) <= 256 and len(set(observed)) > 10
    stream = PretrainWindows(series, 40, 512, 8, seed=3, tail_share=0.5, max_tail_patches=32, mask_ratio=(0.15, 0.5))
    digest = hashlib.sha256()
    for i in range(40):
        for tensor in stream[i]:
            digest.update(tensor.numpy().tobytes())
    assert digest.hexdigest()[:16] == "ba9c8d763a9084c5"


@pytest.mark.slow
def test_a_compiled_pretraining_step_trains_the_same_weights_as_an_eager_one(tmp_path, monkeypatch):
    """``--compile`` runs the objective through torch.compile: the same steps from the same
    start reach the same weights (up to the fused kernels' rounding), and the checkpoint a
    compiled leg writes resumes in an eager one."""
    import torch._inductor.config
    from safetensors.torch import load_file
    from torch._dynamo.utils import counters

    from trace_forecast.pretrain import main

    common = ["--synthetic", "20", "--batch-size", "4", "--d-model", "16", "--layers", "1", "--d-ff", "32",
              "--heads", "2", "--checkpoint-every", "3", "--device", "cpu", "--precision", "32-true",
              "--steps", "6", "--schedule", "constant", "--warmup-steps", "2", "--quiet"]
    main(["--out", str(tmp_path / "eager"), *common])
    campaign = ["--out", str(tmp_path / "legs"), "--campaign", str(tmp_path / "campaign"), "--max-minutes", "30"]
    # compile in this process: inductor's pool of compile workers would outlive the test and
    # take the cores from the suite's other tests (30 s of the suite's wall time)
    monkeypatch.setattr(torch._inductor.config, "compile_threads", 1)
    counters.clear()
    first = main([*campaign, *common, "--stop-after", "3", "--compile"])
    assert counters["stats"]["unique_graphs"] >= 1  # the objective went through the compiler
    second = main([*campaign, *common])  # resumes the compiled leg's checkpoint, eager
    assert (first["steps"], second["steps"]) == (3, 6)
    eager, legs = (load_file(tmp_path / name / "model.safetensors") for name in ("eager", "legs"))
    assert all(torch.allclose(eager[k], legs[k], rtol=1e-4, atol=1e-5) for k in eager)
