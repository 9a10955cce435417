"""Plain LoRA and AdaLoRA from the PEFT library, for comparison with gated LoRA.

PEFT injects its layers into the encoder in place; the tuner object is kept so that
AdaLoRA's rank allocation (``update_and_allocate``) can run after each optimiser step
(see :class:`trace_forecast.engine.callbacks.AdaLoraAllocator`). AdaLoRA's orthogonality
regulariser is added by PEFT only inside its own ``forward`` with labels; we call the
encoder directly, so it is not applied (documented in ``docs/architecture.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def inject_peft(
    encoder: nn.Module,
    mode: str,
    targets: Sequence[str],
    rank: int,
    total_steps: int | None = None,
) -> nn.Module:
    """Inject PEFT ``"lora"`` or ``"adalora"`` layers into ``encoder``; return the tuner."""
    from peft import AdaLoraConfig, LoraConfig
    from peft.tuners.adalora import AdaLoraModel
    from peft.tuners.lora import LoraModel

    if mode == "lora":
        config = LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=list(targets), lora_dropout=0.0)
        return LoraModel(encoder, config, "default")
    if mode == "adalora":
        config = AdaLoraConfig(
            init_r=2 * rank,
            target_r=rank,
            lora_alpha=2 * rank,
            target_modules=list(targets),
            **adalora_schedule(total_steps),
        )
        return AdaLoraModel(encoder, config, "default")
    raise ValueError(f"unknown PEFT mode {mode!r}")


def adalora_schedule(total_steps: int | None) -> dict[str, int]:
    """AdaLoRA's budget schedule for a run of ``total_steps`` optimiser steps."""
    steps = max(int(total_steps or 100), 10)
    return {"total_step": steps, "tinit": int(0.1 * steps), "tfinal": int(0.3 * steps), "deltaT": max(1, steps // 20)}


def set_adalora_steps(tuner: nn.Module, total_steps: int) -> None:
    """Re-time an AdaLoRA tuner's schedule once the run length is known (its rank
    allocator reads the same config object)."""
    config = tuner.peft_config["default"]
    for key, value in adalora_schedule(total_steps).items():
        setattr(config, key, value)
