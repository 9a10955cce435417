"""What to build around a backbone (:class:`NetworkSpec`): a light module, so that the
estimators can be defined, configured and validated without importing transformers,
PEFT or Lightning (they load when a network is built)."""

from __future__ import annotations

from dataclasses import dataclass

from trace_forecast.parameters import ADAPTERS, HEADS, LORA_TARGETS, default

TASKS = ("forecast", "reconstruction")


@dataclass
class NetworkSpec:
    """What to build around a backbone.

    ``task="forecast"`` needs ``horizon``; ``task="reconstruction"`` (anomaly detection)
    trains the masked-reconstruction objective and has no forecasting head.
    """

    horizon: int = 0
    context_length: int = default("context_length")
    adapter: str = default("adapter")
    head: str = default("head")
    task: str = "forecast"
    lora_rank: int = default("lora_rank")
    lora_targets: tuple[str, ...] = LORA_TARGETS
    temporal_map: str = default("temporal_map")
    future_patches: int = 0  # hidden future patches the backbone predicts (heads.reconstruction)
    total_steps: int | None = None  # AdaLoRA's allocation schedule needs it
    sign_symmetric: bool = False  # the head averages the forecasts of x and -x (heads.reconstruction)

    def __post_init__(self) -> None:
        if self.adapter not in ADAPTERS:
            raise ValueError(f"adapter must be one of {ADAPTERS}, got {self.adapter!r}")
        if self.head not in HEADS:
            raise ValueError(f"head must be one of {HEADS}, got {self.head!r}")
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        if self.task == "forecast" and self.horizon < 1:
            raise ValueError(f"forecast horizon must be >= 1, got {self.horizon}")
        if self.lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {self.lora_rank}")
