"""The keep-budget schedule of Gated DSIC (cubic decay, as AdaLoRA uses for ranks)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class KeepSchedule:
    """How many gated modules stay active at each optimiser step.

    All ``n_modules`` are kept up to ``warmup_step``; the count then decays as
    ``floor(target + (n - target) * (1 - progress) ** 3)`` (as AdaLoRA) and reaches ``target`` at
    ``final_step``, after which the selection is frozen.
    """

    n_modules: int
    target: int
    warmup_step: int
    final_step: int

    def __post_init__(self) -> None:
        if not 1 <= self.target <= self.n_modules:
            raise ValueError(f"target must be in [1, {self.n_modules}], got {self.target}")
        if not 0 <= self.warmup_step < self.final_step:
            raise ValueError(
                f"need 0 <= warmup_step < final_step, got {self.warmup_step} and {self.final_step}"
            )

    def keep(self, step: int) -> int:
        """Number of modules to keep at ``step``."""
        if step <= self.warmup_step:
            return self.n_modules
        if step >= self.final_step:
            return self.target
        progress = (step - self.warmup_step) / (self.final_step - self.warmup_step)
        count = self.target + (self.n_modules - self.target) * (1.0 - progress) ** 3
        return max(self.target, min(self.n_modules, math.floor(count)))


def resolve_count(budget: float | int, n_modules: int) -> int:
    """A budget given as a fraction in (0, 1] or as a count, as a module count."""
    if isinstance(budget, bool) or budget <= 0:
        raise ValueError(f"budget must be a positive fraction or count, got {budget!r}")
    if isinstance(budget, float) and budget <= 1.0:
        return max(1, round(budget * n_modules))
    count = int(budget)
    if count > n_modules:
        raise ValueError(f"budget {count} exceeds the {n_modules} gated modules")
    return count


def resolve_step(at: float | int, total_steps: int) -> int:
    """A step given as a fraction of training (float < 1) or as an absolute step."""
    if isinstance(at, float) and 0 <= at < 1:
        return int(round(at * total_steps))
    return int(at)
