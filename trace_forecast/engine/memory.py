"""Memory: refuse a fit that cannot fit before allocating it, and retry once on a CUDA
out-of-memory error with half the batch.

The estimate is deliberately rough (within a small factor): training keeps, per window,
the activations of every encoder block for the backward pass -- the ``[patches, d_model]``
hidden states, the ``[patches, d_ff]`` feed-forward activations and the
``[heads, patches, patches]`` attention weights, a few copies each -- and, for the network,
the weights, their gradients and AdamW's two moments for whatever trains (the whole network
at worst, plus the forecasting head, which grows with the horizon). It is compared with
the memory available (CUDA: free device memory; CPU: ``MemAvailable``) and a fit is refused
only when the estimate exceeds it, so the check never blocks a fit that would have run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from trace_forecast.errors import ResourceError

BYTES = 4  # float32 (bf16 halves activations; the estimate stays conservative)
ACTIVATION_COPIES = 6  # inputs, outputs and saved intermediates per block tensor


@dataclass(frozen=True)
class MemoryEstimate:
    activations: int
    parameters: int

    @property
    def total(self) -> int:
        return self.activations + self.parameters


def estimate_training_bytes(config, context_length: int, horizon: int, batch_size: int,
                            future_patches: int = 0) -> MemoryEstimate:
    """Bytes a training step needs for ``batch_size`` univariate windows (see the module doc)."""
    from trace_forecast.heads.reconstruction import rollout_steps

    t5 = config.t5_config
    future_steps = rollout_steps(future_patches, horizon, config.patch_len)
    passes = max(1, -(-future_steps // max(1, future_patches * config.patch_len)))  # a long horizon rolls out
    patches = context_length // config.patch_len
    d_model, d_ff, heads, layers = t5["d_model"], t5["d_ff"], t5["num_heads"], t5["num_layers"]
    per_window = passes * layers * ACTIVATION_COPIES * (patches * (2 * d_model + d_ff) + heads * patches * patches)
    backbone_params = layers * (4 * d_model * t5.get("d_kv", d_model // heads) * heads + 3 * d_model * d_ff)
    head_params = (context_length + future_steps + 1) * horizon
    # Weights + gradients + AdamW's two moments for the head; the backbone's weights (and,
    # at worst, their training state as in full fine-tuning).
    parameters = BYTES * (4 * head_params + 4 * backbone_params)
    return MemoryEstimate(BYTES * batch_size * per_window, parameters)


def available_bytes(accelerator: str) -> int | None:
    """Free memory where the fit runs, or ``None`` where it cannot be read."""
    if accelerator == "gpu" and torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def check_training_memory(config, context_length: int, horizon: int, batch_size: int, accelerator: str,
                          future_patches: int = 0) -> None:
    """Raise :class:`ResourceError` with a remedy when a fit would clearly not fit in memory."""
    available = available_bytes(accelerator)
    if available is None:
        return
    need = estimate_training_bytes(config, context_length, horizon, batch_size, future_patches)
    if need.total <= available:
        return
    per_window = max(1, need.activations // max(1, batch_size))
    fits = max(0, (available - need.parameters) // per_window)
    where = "free GPU memory" if accelerator == "gpu" else "available RAM"
    remedy = (f"lower batch_size to at most {fits}" if fits >= 1 else
              "lower the horizon or context_length, or use a smaller backbone")
    raise ResourceError(
        f"this fit needs about {need.total / 2**30:.1f} GiB (batch_size={batch_size}, context_length="
        f"{context_length}, horizon={horizon}: {need.activations / 2**30:.1f} GiB of activations, "
        f"{need.parameters / 2**30:.1f} GiB of weights and optimiser state) but {available / 2**30:.1f} GiB of "
        f"{where} is left: {remedy}"
    )
