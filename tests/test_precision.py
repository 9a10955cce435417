"""Reduced precision of forward-only passes on the CPU (bf16 where native, int8 for the head
start elsewhere) and the cache-sized inference batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from trace_forecast.engine import precision
from trace_forecast.engine.batching import CPU_INFERENCE_BATCH, GPU_INFERENCE_BATCH, inference_batch_size
from trace_forecast.network import NetworkSpec, build_network


@pytest.fixture
def network(tiny_backbone_dir):
    from trace_forecast.backbone import load_backbone

    return build_network(load_backbone(tiny_backbone_dir), NetworkSpec(horizon=8, context_length=64), seed=0).eval()


def _inputs(n: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    return torch.randn(n, 1, 64).cumsum(-1), torch.ones(n, 64)


def test_the_environment_switch(monkeypatch):
    monkeypatch.delenv(precision.PRECISION_ENV, raising=False)
    assert precision.reduced_precision_enabled()
    monkeypatch.setenv(precision.PRECISION_ENV, "FP32")
    assert not precision.reduced_precision_enabled()
    monkeypatch.setenv(precision.PRECISION_ENV, "int4")
    with pytest.raises(ValueError, match="TRACE_FORECAST_PRECISION must be one of"):
        precision.reduced_precision_enabled()


@pytest.mark.skipif(not precision.int8_available(), reason="torch has no x86/FBGEMM quantized engine here")
def test_head_start_reads_an_int8_copy_where_bf16_is_not_native(network, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: False)
    x, mask = _inputs()
    weights = {k: v.clone() for k, v in network.state_dict().items()}
    with torch.no_grad():
        exact = network.forecast_features(x, mask)[0]
        with precision.head_start_features(network, "cpu") as features:
            assert features is not network
            quantized = features.forecast_features(x, mask)[0]
    assert all(torch.equal(v, network.state_dict()[k]) for k, v in weights.items())  # the original is untouched
    assert all(type(m) is nn.Linear for m in network.modules() if isinstance(m, nn.Linear))
    assert not torch.equal(quantized, exact)
    assert float(((quantized - exact) ** 2).mean() / exact.var()) < 1e-2


def test_head_start_runs_in_bf16_where_native_and_in_fp32_when_asked(network, monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    with precision.head_start_features(network, "cpu") as features:
        assert features is network and torch.is_autocast_enabled("cpu")
    monkeypatch.setenv(precision.PRECISION_ENV, "fp32")
    with precision.head_start_features(network, "cpu") as features:
        assert features is network and not torch.is_autocast_enabled("cpu")


def test_bf16_predictions_stay_close_to_fp32(network, monkeypatch):
    from trace_forecast.tasks.forecast import predict_normalized

    histories = [h[0].numpy() for h in _inputs(5)[0]]
    monkeypatch.setenv(precision.PRECISION_ENV, "fp32")
    exact = predict_normalized(network, histories)[0]
    monkeypatch.setenv(precision.PRECISION_ENV, "auto")
    monkeypatch.setattr(precision, "native_bf16", lambda: True)
    with precision.prediction_autocast("cpu"):
        assert torch.is_autocast_enabled("cpu")
    fast = predict_normalized(network, histories)[0]
    assert fast.dtype == np.float32
    assert np.mean((fast - exact) ** 2) < 1e-3 * max(float(np.var(exact)), 1e-6)


def test_inference_batches_fit_the_cache_on_a_cpu():
    assert inference_batch_size("cpu") == CPU_INFERENCE_BATCH < GPU_INFERENCE_BATCH
    assert inference_batch_size(torch.device("cuda", 0)) == GPU_INFERENCE_BATCH


def test_bf16_counts_as_native_only_with_bf16_instructions_that_onednn_may_use(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    assert not precision.native_bf16()  # e.g. AVX-512 without BF16, where oneDNN emulates it
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True)
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert not precision.native_bf16()  # ONEDNN_MAX_CPU_ISA below the bf16 instructions
