"""The backbone is MOMENT: same weights layout, same numbers, masks that really work."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from conftest import tiny_config

from trace_forecast.backbone import MomentBackbone, load_backbone, moment_config, save_backbone, t5_config_dict
from trace_forecast.errors import CheckpointError


@pytest.fixture(scope="module")
def sktime_moment(tmp_path_factory):
    """A tiny random MOMENT built by sktime's own copy, saved with its own save_pretrained."""
    from sktime.libs.momentfm import MOMENTPipeline
    from transformers import T5Config, T5EncoderModel

    root = tmp_path_factory.mktemp("sktime_moment")
    t5 = t5_config_dict(d_model=32, n_layers=2, d_ff=64, n_heads=2, d_kv=16, vocab_size=8)
    T5EncoderModel(T5Config(**t5)).save_pretrained(root / "t5")  # local: nothing downloads
    config = {
        "task_name": "reconstruction", "model_name": "MOMENT", "transformer_type": "encoder_only",
        "d_model": 32, "seq_len": 512, "patch_len": 8, "patch_stride_len": 8,
        "transformer_backbone": str(root / "t5"), "t5_config": t5,
    }
    kwargs = {"model_kwargs": {"task_name": "reconstruction", "transformer_backbone": str(root / "t5")}}
    torch.manual_seed(0)
    theirs = MOMENTPipeline(config, **kwargs)
    theirs.init()
    theirs.save_pretrained(root / "theirs")
    return theirs.eval(), root, kwargs


def _inputs():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 512, generator=g).cumsum(-1)
    input_mask = torch.ones(3, 512)
    input_mask[0, :100] = 0  # left padding, not a multiple of the patch length
    input_mask[1, :256] = 0
    mask = torch.ones(3, 512)
    mask[:, 200:264] = 0
    mask[2, 480:] = 0
    return x, input_mask, mask


def test_loads_sktime_moment_and_reconstructs_identically(sktime_moment):
    theirs, root, _ = sktime_moment
    ours = load_backbone(root / "theirs")
    x, input_mask, mask = _inputs()
    with torch.no_grad():
        expected = theirs(x_enc=x, input_mask=input_mask, mask=mask).reconstruction
        got = ours.reconstruct(x, input_mask, mask)
    assert expected.abs().max() > 0.1  # a real output, not a trivial one
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_folder_we_save_loads_in_sktime_moment(sktime_moment, tmp_path):
    from sktime.libs.momentfm import MOMENTPipeline

    theirs, root, kwargs = sktime_moment
    ours = load_backbone(root / "theirs")
    save_backbone(ours, tmp_path / "ours")
    back = MOMENTPipeline.from_pretrained(tmp_path / "ours", **kwargs).eval()
    x, input_mask, mask = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(
            back(x_enc=x, input_mask=input_mask, mask=mask).reconstruction,
            ours.reconstruct(x, input_mask, mask),
            atol=1e-5,
            rtol=1e-5,
        )


def test_padding_reaches_revin_and_attention(tiny_backbone_dir):
    model = load_backbone(tiny_backbone_dir)
    x, input_mask, _ = _inputs()
    garbage = x.clone()
    garbage[0, :, :100] = 1e6  # values behind input_mask = 0 must not matter
    garbage[1, :, :256] = -3e4
    with torch.no_grad():
        a = model.reconstruct(x, input_mask)
        b = model.reconstruct(garbage, input_mask)
    torch.testing.assert_close(a[0, :, 104:], b[0, :, 104:])
    torch.testing.assert_close(a[1, :, 256:], b[1, :, 256:])
    assert torch.isfinite(b).all()


def test_constant_and_tiny_series_give_finite_output(tiny_backbone_dir):
    model = load_backbone(tiny_backbone_dir)
    x = torch.full((2, 1, 64), 7.0)
    mask = torch.ones(2, 64)
    mask[1, :61] = 0  # three observed values: no patch fully observed
    with torch.no_grad():
        out = model.reconstruct(x, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out[0], torch.full((1, 64), 7.0), atol=1e-3, rtol=0)


def test_channels_are_independent(tiny_backbone_dir):
    model = load_backbone(tiny_backbone_dir)
    x, input_mask, mask = _inputs()
    with torch.no_grad():
        joint = model.reconstruct(x, input_mask, mask)
        single = model.reconstruct(x[:, :1], input_mask, mask)
    torch.testing.assert_close(joint[:, :1], single)


def test_save_load_round_trip_is_exact(tiny_backbone_dir, tmp_path):
    model = load_backbone(tiny_backbone_dir)
    save_backbone(model, tmp_path / "copy", moment_compatible=False)
    again = load_backbone(tmp_path / "copy")
    for (k, v), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2)


def test_missing_folder_and_files_have_specific_errors(tiny_backbone_dir, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_backbone(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="no config.json"):
        load_backbone(tmp_path / "empty")
    shutil.copytree(tiny_backbone_dir, tmp_path / "noweights")
    (tmp_path / "noweights" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_backbone(tmp_path / "noweights")


def test_config_missing_field_errors_and_unknown_field_warns(tiny_backbone_dir, tmp_path):
    folder = shutil.copytree(tiny_backbone_dir, tmp_path / "c")
    cfg = json.loads((folder / "config.json").read_text())
    cfg["some_future_field"] = 1
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.warns(UserWarning, match="some_future_field"):
        load_backbone(folder)
    del cfg["d_model"]
    (folder / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"missing required fields: \['d_model'\]"):
        load_backbone(folder)


def test_corrupted_weights_and_mismatched_config(tiny_backbone_dir, tmp_path):
    folder = shutil.copytree(tiny_backbone_dir, tmp_path / "bad")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="corrupted or truncated"):
        load_backbone(folder)
    folder2 = shutil.copytree(tiny_backbone_dir, tmp_path / "mismatch")
    cfg = json.loads((folder2 / "config.json").read_text())
    cfg["t5_config"]["d_ff"] = 128
    (folder2 / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="do not match its config.json"):
        load_backbone(folder2)


def test_hub_id_offline_and_not_cached_names_the_id(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(CheckpointError, match="AutonLab/MOMENT-1-large") as caught:
        load_backbone("AutonLab/MOMENT-1-large")
    # The hint names the command the installed huggingface_hub provides (huggingface-cli is gone).
    assert "`hf download AutonLab/MOMENT-1-large`" in str(caught.value)
    from huggingface_hub.cli import hf  # noqa: F401  (the `hf` entry point exists)


def test_hub_id_resolves_through_the_local_cache(tiny_backbone_dir, monkeypatch):
    import trace_forecast.backbone.io as io

    calls = []

    def fake_snapshot_download(repo_id, allow_patterns=None):
        calls.append((repo_id, allow_patterns))
        return str(tiny_backbone_dir)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    model = io.load_backbone("AutonLab/MOMENT-1-small")
    assert calls == [("AutonLab/MOMENT-1-small", ["config.json", "model.safetensors"])]
    assert isinstance(model, MomentBackbone)


def test_moment_sizes_match_the_public_checkpoints():
    with torch.device("meta"):
        for size, params in (("small", 35e6), ("base", 110e6), ("large", 340e6)):
            model = MomentBackbone(moment_config(size))
            n = sum(p.numel() for p in model.parameters())
            assert 0.9 * params < n < 1.15 * params, (size, n)


def test_tiny_config_builds():
    assert MomentBackbone(tiny_config()).config.n_patches == 64


def test_loading_a_backbone_leaves_the_global_random_state_alone():
    """Its random initial weights are overwritten: drawing them must not shift a process's
    first fit against its later ones (a Darts fit seeds, then loads the backbone)."""
    import torch

    from trace_forecast.backbone import load_backbone

    torch.manual_seed(0)
    before = torch.get_rng_state()
    load_backbone(None)
    assert torch.equal(torch.get_rng_state(), before)
