"""How to train: the settings a fit takes from a front end's parameters and the recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trace_forecast.engine.devices import resolve_accelerator
from trace_forecast.parameters import default

# The recipe's fixed values (:mod:`trace_forecast.engine.recipe` uses them; no parameter sets them).
WEIGHT_DECAY = 1e-4
GRADIENT_CLIP = 1.0  # clipping by norm, a trainer setting
EARLY_STOPPING_PATIENCE = 3  # epochs without a better validation loss


@dataclass
class DSICSettings:
    """Gated DSIC settings (see :class:`trace_forecast.selection.GatedDSIC`)."""

    budget: float | int = default("dsic_budget")
    warmup: float | int = default("dsic_warmup")
    final: float | int = default("dsic_final")
    interval: int = default("dsic_interval")
    draws: int = default("dsic_draws")
    rule: str = default("dsic_rule")
    ema: float = 0.85

    @classmethod
    def from_params(cls, params) -> DSICSettings:
        """From an estimator's ``dsic_budget``, ``dsic_warmup``, ``dsic_final``,
        ``dsic_interval``, ``dsic_draws`` and ``dsic_rule`` parameters (a mapping)."""
        names = ("budget", "warmup", "final", "interval", "draws", "rule")
        return cls(**{name: params[f"dsic_{name}"] for name in names})


@dataclass
class TrainSettings:
    """How to train; defaults are the user-facing ones (:mod:`trace_forecast.parameters`)
    and the recipe's fixed values above."""

    max_epochs: int = default("max_epochs")
    max_steps: int = -1
    batch_size: int = default("batch_size")
    learning_rate: float = default("learning_rate")
    weight_decay: float = WEIGHT_DECAY
    gradient_clip: float = GRADIENT_CLIP
    early_stopping_patience: int = EARLY_STOPPING_PATIENCE
    reconstruction_weight: float = default("reconstruction_weight")
    mask_ratio: float = default("mask_ratio")
    visible_weight: float = 1.0
    mask_scheme: tuple[str, int] | None = None
    device: str = "auto"
    devices: int | str = 1
    strategy: str = "auto"
    precision: str | None = None
    random_state: int | None = 0
    verbose: bool = False
    trainer_kwargs: dict[str, Any] = field(default_factory=dict)  # accelerator, devices, strategy, precision, num_nodes
    dsic: DSICSettings | None = field(default_factory=DSICSettings)  # None: gated LoRA without selection
    checkpoint_dir: str | None = None  # resumable checkpoints (engine.resume); None: none
    checkpoint_every: Any = default("checkpoint_every")  # steps (int) or a datetime.timedelta

    def accelerator(self) -> tuple[str, str]:
        """``(accelerator, default precision)`` where this training runs (``trainer_kwargs`` win)."""
        return resolve_accelerator(self.trainer_kwargs.get("accelerator", self.device))
