"""Where gated LoRA goes: find target linear layers, wrap them, and manage the set.

:class:`GatedLoraSet` is the single object the rest of the package talks to: the
ordered modules, their masks, temporary Monte-Carlo draw masks, merging, and the
adapter state that is saved (pruned modules are dropped from it).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from trace_forecast.adapters.gated_lora import GatedLoraLinear
from trace_forecast.parameters import LORA_TARGETS as DEFAULT_TARGETS

# Guards merging and unmerging, so that threads predicting with one network at once
# merge its updates once and restore them after the last one finishes.
_MERGE_LOCK = threading.Lock()


def resolve_targets(lora_targets: Sequence[str] | None) -> tuple[str, ...]:
    """The ``lora_targets`` parameter as a tuple (``None``: every default target)."""
    return DEFAULT_TARGETS if lora_targets is None else tuple(lora_targets)


def find_targets(root: nn.Module, targets: Sequence[str]) -> list[str]:
    """Names of ``nn.Linear`` modules under ``root`` whose last name part is a target.

    A target may also be a regular expression matched against the full name.
    """
    names = []
    for name, module in root.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        leaf = name.rsplit(".", 1)[-1]
        if leaf in targets or any(re.fullmatch(t, name) for t in targets if not t.isidentifier()):
            names.append(name)
    return names


def _short(name: str) -> str:
    """Module name relative to the encoder (``block.0.layer.0.SelfAttention.q``)."""
    return name.split("encoder.", 1)[-1]


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, leaf = name.rpartition(".")
    parent = root.get_submodule(parent_name) if parent_name else root
    setattr(parent, leaf, new)


class GatedLoraSet:
    """The gated LoRA modules injected into one encoder, in a fixed order."""

    def __init__(self, modules: dict[str, GatedLoraLinear]) -> None:
        if not modules:
            raise ValueError("no target layers found for gated LoRA")
        self.names = list(modules)
        self.modules = list(modules.values())

    @classmethod
    def inject(
        cls,
        encoder: nn.Module,
        targets: Sequence[str] = DEFAULT_TARGETS,
        rank: int = 2,
        alpha: float | None = None,
        dropout: float = 0.0,
    ) -> GatedLoraSet:
        """Wrap every target linear layer of ``encoder`` (in place) and return the set."""
        alpha = 2.0 * rank if alpha is None else alpha
        names = find_targets(encoder, targets)
        if not names:
            raise ValueError(f"none of the targets {list(targets)} matched a linear layer")
        modules = {}
        for name in names:
            layer = GatedLoraLinear(encoder.get_submodule(name), rank=rank, alpha=alpha, dropout=dropout)
            _replace(encoder, name, layer)
            modules[name] = layer
        return cls(modules)

    @classmethod
    def find(cls, root: nn.Module) -> GatedLoraSet | None:
        """The set already injected under ``root`` (``None`` if there is none)."""
        found = {_short(n): m for n, m in root.named_modules() if isinstance(m, GatedLoraLinear)}
        return cls(found) if found else None

    def __len__(self) -> int:
        return len(self.modules)

    def __iter__(self) -> Iterator[GatedLoraLinear]:
        return iter(self.modules)

    @property
    def gates(self) -> list[nn.Parameter]:
        return [m.gate for m in self.modules]

    def gate_values(self) -> torch.Tensor:
        return torch.stack([m.gate.detach().float().cpu() for m in self.modules])

    def masks(self) -> torch.Tensor:
        """The stored selection masks as a float tensor ``[n_modules]`` on the CPU."""
        return torch.stack([m.mask.detach().float().cpu() for m in self.modules])

    @torch.no_grad()
    def set_masks(self, masks: torch.Tensor) -> None:
        for m, value in zip(self.modules, masks.tolist(), strict=True):
            m.mask.fill_(float(value))

    @contextlib.contextmanager
    def draw(self, item_gates: torch.Tensor) -> Iterator[None]:
        """Temporarily give every batch item its own effective gates: ``item_gates
        [n_modules, items]`` replaces ``mask * gate`` (Gated DSIC's batched draws)."""
        try:
            for m, gates in zip(self.modules, item_gates, strict=True):
                m.draw_gate = gates
            yield
        finally:
            for m in self.modules:
                m.draw_gate = None

    @contextlib.contextmanager
    def bypassed(self) -> Iterator[None]:
        """Temporarily compute the frozen backbone alone (every update skipped)."""
        try:
            for m in self.modules:
                m.bypassed = True
            yield
        finally:
            for m in self.modules:
                m.bypassed = False

    @property
    def selection_frozen(self) -> bool:
        """Whether a final selection has frozen the pruned modules (see :meth:`freeze_pruned`)."""
        return any(not m.gate.requires_grad for m in self.modules)

    def freeze_pruned(self) -> None:
        """Stop training the modules whose mask is 0 (after the final selection)."""
        for m in self.modules:
            keep = m.active
            for p in (m.lora_A, m.lora_B, m.gate):
                p.requires_grad_(keep)

    def switch_off(self) -> None:
        """Mask every module and stop training it: the encoder is the pretrained one again
        (a fit whose validation preferred its start; see ``BestOnValidation``)."""
        self.set_masks(torch.zeros(len(self.modules)))
        self.freeze_pruned()

    def merge(self) -> None:
        for m in self.modules:
            m.merge()

    def unmerge(self) -> None:
        for m in self.modules:
            m.unmerge()

    @contextlib.contextmanager
    def merged(self) -> Iterator[None]:
        """Inference with the selected updates merged into the base weights, restored
        exactly afterwards. Unmerged, each update costs two rank-``r`` products and an
        add per layer, memory-bound on a CPU; merged, one product per layer
        (``docs/scaling.md``, "Speed on a CPU", measures prediction before and after).
        Re-entrant and thread-safe: nested or concurrent uses merge once."""
        with _MERGE_LOCK:
            for m in self.modules:
                m.merge_depth = getattr(m, "merge_depth", 0) + 1
                if m.merge_depth == 1 and m.active:
                    m.merge()
        try:
            yield
        finally:
            with _MERGE_LOCK:
                for m in self.modules:
                    m.merge_depth -= 1
                    if m.merge_depth == 0:
                        m.unmerge()

    def state_dict(self, kept_only: bool = True) -> dict[str, torch.Tensor]:
        """Adapter weights keyed ``<module name>.{lora_A,lora_B,gate}`` (kept modules only)."""
        out = {}
        for name, m in zip(self.names, self.modules, strict=True):
            if kept_only and not m.active:
                continue
            for key in ("lora_A", "lora_B", "gate"):
                out[f"{name}.{key}"] = getattr(m, key).detach().cpu().clone()
        return out

    @torch.no_grad()
    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load adapter weights; modules absent from ``state`` are switched off."""
        for name, m in zip(self.names, self.modules, strict=True):
            present = f"{name}.gate" in state
            if present:
                for key in ("lora_A", "lora_B", "gate"):
                    getattr(m, key).copy_(state[f"{name}.{key}"])
            m.mask.fill_(1.0 if present else 0.0)
