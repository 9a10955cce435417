"""Reduced precision on the CPU for the forward-only passes that tolerate it.

The frozen backbone's matrix products are most of a default fit (the closed-form head
start reads 8,192 windows through it) and of every prediction, and on a CPU they run
near the cores' fp32 peak already. Two ways to do fewer fp32 operations:

- **bf16 autocast** where the CPU multiplies bf16 natively (AVX512_BF16 or AMX, usable
  by oneDNN: :func:`native_bf16`). Predictions and the head start's features both use it: on 2 AMD EPYC (Zen 4)
  cores, the default forecaster's ETTh1 forecasts moved by a scale-free MSE of 2e-6
  (``benchmarks/cpu_speed.py``).
- **int8 dynamic quantization** of the linear layers (torch's x86 engine: FBGEMM on AVX2)
  where bf16 is not native, for the head start only: the ridge solve then sees slightly
  noisier features, which measured neutral (ETTh1 H = 96, 5 seeds: MSE 0.3739 against
  0.3741 in fp32 and in bf16; ``benchmarks/head_start_precision.py``), while fine-tuning
  and prediction stay in fp32. Predictions are not quantized: the copy would be made on
  every call (slow for small predictions), and int8 outputs are further from fp32 than
  bf16's.

``TRACE_FORECAST_PRECISION=fp32`` in the environment turns both off (every pass in fp32,
as before). On CUDA nothing changes here: training already runs in mixed precision.
Measurements: ``benchmarks/cpu_speed.py`` and ``docs/scaling.md``.
"""

from __future__ import annotations

import contextlib
import copy
import os
import warnings
from collections.abc import Iterator

import torch
from torch import nn

PRECISION_ENV = "TRACE_FORECAST_PRECISION"
PRECISIONS = ("auto", "fp32")
# Larger networks are not copied for int8 (the copy would hold another fp32 network in memory).
INT8_COPY_MAX_PARAMETERS = 100_000_000


def reduced_precision_enabled() -> bool:
    """Whether ``TRACE_FORECAST_PRECISION`` allows reduced precision (default ``auto``: yes)."""
    value = os.environ.get(PRECISION_ENV, "auto").strip().lower()
    if value not in PRECISIONS:
        raise ValueError(f"{PRECISION_ENV} must be one of {PRECISIONS}, got {value!r}")
    return value == "auto"


def native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively: it has AVX512_BF16 or AMX, and
    oneDNN may use them (``ONEDNN_MAX_CPU_ISA`` can forbid it). oneDNN alone also says yes
    on AVX-512 CPUs without bf16 instructions, where it emulates bf16 more slowly than fp32."""
    try:
        hardware = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return bool(hardware and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def int8_available() -> bool:
    """Whether torch's dynamic int8 quantization runs here (an x86 or FBGEMM engine)."""
    engines = getattr(torch.backends.quantized, "supported_engines", [])
    return (hasattr(torch.ao.quantization, "quantize_dynamic") and any(e in engines for e in ("x86", "fbgemm"))
            and torch.cpu._is_avx2_supported())  # FBGEMM's minimum


def _on_cpu(device: torch.device | str) -> bool:
    return torch.device(device).type == "cpu"


def prediction_autocast(device: torch.device | str) -> contextlib.AbstractContextManager:
    """bf16 autocast for a prediction on ``device`` where the CPU has native bf16, else nothing."""
    if _on_cpu(device) and reduced_precision_enabled() and native_bf16():
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _quantized_copy(network: nn.Module) -> nn.Module:
    """An int8 dynamically quantized copy of ``network``'s linear layers (the original is untouched)."""
    with warnings.catch_warnings():  # torch marks eager-mode quantization for migration to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(copy.deepcopy(network), {nn.Linear}, dtype=torch.qint8,
                                                      inplace=True)  # on our copy: no second copy inside


@contextlib.contextmanager
def head_start_features(network: nn.Module, device: torch.device | str) -> Iterator[nn.Module]:
    """The network to read the closed-form head start's frozen features from: in bf16
    autocast, an int8 copy, or ``network`` itself in fp32 (see the module docstring)."""
    if not (_on_cpu(device) and reduced_precision_enabled()):
        yield network
    elif native_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            yield network
    elif int8_available() and sum(p.numel() for p in network.parameters()) <= INT8_COPY_MAX_PARAMETERS:
        try:
            quantized = _quantized_copy(network)
        except (RuntimeError, AssertionError):  # an engine that cannot pack these weights: stay in fp32
            quantized = network
        yield quantized
    else:
        yield network
