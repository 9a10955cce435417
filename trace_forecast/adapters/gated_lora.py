"""Gated LoRA: a LoRA module whose contribution a scalar gate and a binary mask control.

``y = W x + b + m * g * (alpha / r) * B A x`` with ``W, b`` frozen, ``A, B`` and the
gate ``g`` trainable, and ``m`` a non-trainable 0/1 buffer set by Gated DSIC.

Why our own layer rather than PEFT's ``LoraLayer``: Gated DSIC needs (a) a scalar gate
per module whose gradient is the importance signal, and (b) a per-module mask that a
selection callback can flip on and off during training, and that Monte-Carlo draws can
override temporarily without touching the stored mask. PEFT's LoRA has neither hook,
and subclassing it would tie this layer to PEFT internals that change between
releases. The delta is still an ordinary LoRA delta (``m*g`` folds into ``B``), so
merged weights and PEFT-format adapters stay possible; ``"lora"`` and ``"adalora"``
modes use PEFT itself.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class GatedLoraLinear(nn.Module):
    """Wrap a frozen ``nn.Linear`` with a gated low-rank update.

    Parameters
    ----------
    base_layer : nn.Linear
        The pretrained layer; its parameters are frozen.
    rank : int
        LoRA rank ``r``.
    alpha : float
        LoRA scaling numerator; the update is scaled by ``alpha / rank``.
    dropout : float
        Dropout applied to the adapter's input only.
    """

    def __init__(self, base_layer: nn.Linear, rank: int = 2, alpha: float = 4.0, dropout: float = 0.0):
        super().__init__()
        if rank < 1:
            raise ValueError(f"LoRA rank must be >= 1, got {rank}")
        self.base_layer = base_layer
        for p in self.base_layer.parameters():
            p.requires_grad_(False)
        self.rank = rank
        self.scaling = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base_layer.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base_layer.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.gate = nn.Parameter(torch.ones(()))
        self.register_buffer("mask", torch.ones(()))
        self.lora_dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.merged = False
        # Set by Gated DSIC during its Monte-Carlo draws: one effective gate per batch item
        # (``[items]``), replacing ``mask * gate`` when not None. An item's rows of the input
        # (its channels, its two signs) are contiguous, so each gate repeats over its block.
        self.draw_gate: torch.Tensor | None = None
        # Set while the closed-form head start reads frozen-backbone features.
        self.bypassed = False
        # How many inference contexts hold the update merged (:meth:`GatedLoraSet.merged`).
        self.merge_depth = 0

    @property
    def weight(self) -> torch.Tensor:
        """The base layer's weight (host models such as T5 read ``.weight.dtype``)."""
        return self.base_layer.weight

    @property
    def active(self) -> bool:
        """Whether the module is currently selected (mask == 1)."""
        return bool(self.mask.item() > 0.5)

    def effective_gate(self) -> torch.Tensor:
        """``m * g``: the stored mask times the gate."""
        return self.mask * self.gate

    def _switched_off(self) -> bool:
        """Whether the stored mask is 0, so the update contributes nothing (checked on the
        CPU only: reading a CUDA mask would synchronise the device on every call)."""
        return self.mask.device.type == "cpu" and not bool(self.mask)

    def _scale(self, x: torch.Tensor) -> torch.Tensor:
        """The update's scale for ``x``: a scalar, or one value per row during a draw."""
        if self.draw_gate is None:
            return (self.effective_gate() * self.scaling).to(x.dtype)
        gate = self.draw_gate
        rows = x.shape[0]
        if rows != len(gate):  # several rows per item (e.g. channels of one window)
            gate = gate.repeat_interleave(rows // len(gate))
        return (gate * self.scaling).to(x.dtype).view(rows, *([1] * (x.ndim - 1)))

    def get_delta_weight(self) -> torch.Tensor:
        """The dense update ``m * g * (alpha / r) * B A`` (shape of the base weight)."""
        return (self.lora_B @ self.lora_A) * (self.effective_gate() * self.scaling)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(x)
        if self.merged or self.bypassed or (self.draw_gate is None and self._switched_off()):
            return out
        low = self.lora_dropout(x) @ self.lora_A.t().to(x.dtype)  # [..., r]
        if self.draw_gate is not None:  # one gate per item: scale the update row by row
            return out + (low @ self.lora_B.t().to(x.dtype)) * self._scale(x)
        # One fused multiply-add: out + low @ (scale * B)^T (the scale folds into the r columns of B).
        scaled_b = self.lora_B.to(x.dtype) * self._scale(x)
        flat = torch.addmm(out.reshape(-1, out.shape[-1]), low.reshape(-1, self.rank), scaled_b.t())
        return flat.view(out.shape)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into the base weight (inference: one matrix product instead of
        three). The base weight is kept, so :meth:`unmerge` restores it bit for bit
        (subtracting the update again would drift by rounding on every cycle)."""
        if not self.merged:
            weight = self.base_layer.weight
            self._unmerged_weight = weight.detach().clone()
            weight += self.get_delta_weight().to(weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the base weight that :meth:`merge` kept."""
        if self.merged:
            self.base_layer.weight.copy_(self._unmerged_weight)
            del self._unmerged_weight
            self.merged = False

    def extra_repr(self) -> str:
        return f"rank={self.rank}, scaling={self.scaling:g}, active={self.active}"
