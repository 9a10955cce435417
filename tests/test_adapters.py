"""Gated LoRA layer math, injection, merge/unmerge, and the parameter budget claims."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trace_forecast.adapters import DEFAULT_TARGETS, GatedLoraLinear, GatedLoraSet
from trace_forecast.backbone import MomentBackbone, moment_config
from trace_forecast.network import NetworkSpec, build_network
from trace_forecast.parameter_count import parameter_report


def _layer(seed: int = 0) -> GatedLoraLinear:
    torch.manual_seed(seed)
    layer = GatedLoraLinear(nn.Linear(16, 12), rank=2, alpha=4.0)
    with torch.no_grad():
        layer.lora_B.normal_()
        layer.gate.fill_(0.7)
    return layer


def test_forward_is_base_plus_gated_scaled_delta():
    layer = _layer()
    x = torch.randn(5, 16)
    expected = layer.base_layer(x) + 0.7 * 2.0 * (x @ layer.lora_A.T @ layer.lora_B.T)
    torch.testing.assert_close(layer(x), expected)
    with torch.no_grad():
        layer.mask.fill_(0.0)
    torch.testing.assert_close(layer(x), layer.base_layer(x))


def test_draw_gates_apply_per_item_and_repeat_over_rows():
    """Gated DSIC's batched draws: one effective gate per item, repeated over its rows
    (e.g. the channels of one Darts sample), whatever the stored mask."""
    layer = _layer()
    with torch.no_grad():
        layer.mask.fill_(0.0)
    x = torch.randn(4, 3, 16)  # 2 items x 2 rows each
    layer.draw_gate = torch.tensor([0.0, 0.5])
    delta = x @ layer.lora_A.T @ layer.lora_B.T
    out = layer(x)
    layer.draw_gate = None
    torch.testing.assert_close(out[:2], layer.base_layer(x[:2]))
    torch.testing.assert_close(out[2:], layer.base_layer(x[2:]) + 0.5 * 2.0 * delta[2:])


def test_merge_and_unmerge_are_exact_inverses():
    layer = _layer()
    x = torch.randn(7, 16)
    before_w = layer.base_layer.weight.detach().clone()
    out = layer(x)
    layer.merge()
    torch.testing.assert_close(layer(x), out, atol=1e-6, rtol=1e-5)
    layer.unmerge()
    assert torch.equal(layer.base_layer.weight, before_w)  # restored bit for bit, not by subtraction
    torch.testing.assert_close(layer(x), out)


def _lora_network(tiny_backbone_dir):
    from trace_forecast.backbone import load_backbone

    network = build_network(load_backbone(tiny_backbone_dir), NetworkSpec(horizon=8, context_length=64), seed=0).eval()
    lora = network.gated_lora
    with torch.no_grad():
        for i, m in enumerate(lora.modules):
            m.lora_B.normal_(0.0, 0.1)
            m.mask.fill_(float(i % 2 == 0))  # half of the modules selected
    return network


def test_inference_merges_selected_updates_and_restores_weights_exactly(tiny_backbone_dir):
    """``TraceNetwork.inference``: the same forecasts with the updates merged, nested
    uses merge once, and every base weight and the training flag come back unchanged."""
    network = _lora_network(tiny_backbone_dir)
    lora = network.gated_lora
    weights = [m.base_layer.weight.detach().clone() for m in lora.modules]
    x, mask = torch.randn(3, 1, 64).cumsum(-1), torch.ones(3, 64)
    with torch.no_grad():
        expected = network.forecast_normalized(x, mask)[0]
        network.train()
        with network.inference():
            assert not network.training
            assert [m.merged for m in lora.modules] == [m.active for m in lora.modules]
            with network.inference():  # re-entrant
                merged = network.forecast_normalized(x, mask)[0]
            assert any(m.merged for m in lora.modules)  # still merged for the outer context
        assert network.training
    torch.testing.assert_close(merged, expected, atol=1e-5, rtol=1e-5)
    assert not any(m.merged for m in lora.modules)
    assert all(torch.equal(m.base_layer.weight, w) for m, w in zip(lora.modules, weights, strict=True))


def test_inference_restores_weights_after_an_error(tiny_backbone_dir):
    network = _lora_network(tiny_backbone_dir)
    weights = [m.base_layer.weight.detach().clone() for m in network.gated_lora.modules]
    with pytest.raises(RuntimeError, match="mid-prediction"), network.inference():
        raise RuntimeError("mid-prediction")
    assert not any(m.merged for m in network.gated_lora.modules)
    assert all(torch.equal(m.base_layer.weight, w) for m, w in zip(network.gated_lora.modules, weights, strict=True))


def test_base_weights_are_frozen_and_delta_starts_at_zero():
    layer = GatedLoraLinear(nn.Linear(4, 4), rank=2)
    assert not layer.base_layer.weight.requires_grad
    assert torch.count_nonzero(layer.get_delta_weight()) == 0


def test_injection_targets_every_block_and_saves_kept_modules_only(tiny_backbone_dir):
    from trace_forecast.backbone import load_backbone

    encoder = load_backbone(tiny_backbone_dir).encoder
    lora = GatedLoraSet.inject(encoder, DEFAULT_TARGETS, rank=2)
    assert len(lora) == 7 * 2
    assert lora.names[:3] == ["block.0.layer.0.SelfAttention.q", "block.0.layer.0.SelfAttention.k", "block.0.layer.0.SelfAttention.v"]
    lora.set_masks(torch.tensor([1.0, 0.0] * 7))
    state = lora.state_dict()
    assert len(state) == 7 * 3
    fresh = GatedLoraSet.inject(load_backbone(tiny_backbone_dir).encoder, DEFAULT_TARGETS, rank=2)
    fresh.load_state_dict(state)
    assert fresh.masks().tolist() == [1.0, 0.0] * 7


def test_unknown_targets_are_an_error(tiny_backbone_dir):
    from trace_forecast.backbone import load_backbone

    with pytest.raises(ValueError, match="none of the targets"):
        GatedLoraSet.inject(load_backbone(tiny_backbone_dir).encoder, ("nope",))


def test_moment_large_budget_claims():
    """At MOMENT-large's size (meta device: nothing allocated or downloaded)."""
    with torch.device("meta"):
        backbone = MomentBackbone(moment_config("large"))
        trace = parameter_report(build_network(backbone, NetworkSpec(horizon=96)))
        probe = parameter_report(build_network(backbone, NetworkSpec(horizon=96, adapter="none", head="linear")))
    assert probe["head_trainable"] == 64 * 1024 * 96 + 96
    assert trace["head_trainable"] < 0.10 * probe["head_trainable"]
    adapter = trace["adapter_trainable"] + trace["gates_trainable"]
    assert adapter < 0.01 * trace["backbone_total"]
    assert trace["gates_trainable"] == 24 * 7
    assert trace["backbone_trainable"] == 0
    # Before selection the full adapter is 16 % of linear probing at H = 96; after Gated
    # DSIC keeps its default half of the modules, the whole of TRACE is under 10 %.
    assert 0.15 < trace["total_trainable"] / probe["total_trainable"] < 0.17
    with torch.device("meta"):
        net = build_network(backbone, NetworkSpec(horizon=96))
    for i, module in enumerate(net.gated_lora):  # what freeze_pruned does after selection
        for p in (module.lora_A, module.lora_B, module.gate):
            p.requires_grad_(i % 2 == 0)
    assert parameter_report(net)["total_trainable"] < 0.10 * probe["total_trainable"]


@pytest.mark.parametrize("adapter", ["lora", "adalora", "full", "none"])
def test_every_mode_builds_and_reports(tiny_backbone_dir, adapter):
    from trace_forecast.backbone import load_backbone

    net = build_network(load_backbone(tiny_backbone_dir), NetworkSpec(horizon=8, context_length=64, adapter=adapter, total_steps=20))
    report = parameter_report(net)
    assert report["total_trainable"] == sum(p.numel() for p in net.parameters() if p.requires_grad)
    if adapter in ("lora", "adalora"):
        assert report["adapter_trainable"] > 0 and report["backbone_trainable"] == 0
    if adapter == "full":
        assert report["backbone_trainable"] > 0
    x = torch.randn(2, 1, 64)
    assert net(x).shape == (2, 1, 8)


@pytest.mark.parametrize("channels", [1, 3])
def test_a_draw_gives_each_item_its_own_gates_with_both_signs_in_one_batch(tiny_backbone_dir, channels):
    """Gated DSIC's batched draws: an item's forecast in a batch, each item with its own gates,
    equals its forecast alone with those gates. The sign-symmetric head runs each window and its
    negation in one batch, and a sample's channels are several windows: every row of an item
    must get that item's gates (they did not while the two signs were concatenated)."""
    from trace_forecast.backbone import load_backbone

    spec = NetworkSpec(horizon=8, context_length=64, sign_symmetric=True)
    network = build_network(load_backbone(tiny_backbone_dir), spec, seed=0).eval()
    assert network.forecast_head.sign_symmetric
    lora = network.gated_lora
    with torch.no_grad():
        for m in lora.modules:
            m.lora_B.normal_(0.0, 0.5)
    items = 4
    x = torch.randn(items * channels, 1, 64, generator=torch.Generator().manual_seed(0)).cumsum(-1)
    mask = torch.ones(items * channels, 64)
    gates = torch.rand(len(lora), items, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        with lora.draw(gates):
            together = network.forecast_normalized(x, mask)[0]
        for i in range(items):
            rows = slice(i * channels, (i + 1) * channels)
            with lora.draw(gates[:, i : i + 1]):
                alone = network.forecast_normalized(x[rows], mask[rows])[0]
            torch.testing.assert_close(together[rows], alone, atol=1e-5, rtol=1e-4)
