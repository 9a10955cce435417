"""Adapters: gated LoRA (ours), and PEFT's LoRA / AdaLoRA for comparison."""

from trace_forecast.adapters.gated_lora import GatedLoraLinear
from trace_forecast.adapters.injection import (
    DEFAULT_TARGETS,
    GatedLoraSet,
    find_targets,
    resolve_targets,
)

__all__ = ["DEFAULT_TARGETS", "GatedLoraLinear", "GatedLoraSet", "find_targets", "resolve_targets"]
