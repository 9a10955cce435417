"""Reversible instance normalisation without affine weights, as in MOMENT.

Statistics are computed over the observed time steps only (``mask == 1``), so left
padding and missing values never shift the mean or the scale. A constant window has standard deviation
0; ``eps`` keeps the division finite and the normalised values are exactly 0.
"""

from __future__ import annotations

import torch
from torch import nn


class RevIN(nn.Module):
    """Per-window, per-channel standardisation that can be inverted."""

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps

    def statistics(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std of ``x [B, C, L]`` over positions where ``mask`` (``[B, L]``, or
        ``[B, C, L]`` for a mask per channel) is 1."""
        keep = (mask.unsqueeze(1) if mask.dim() == 2 else mask).expand_as(x).bool()
        masked = torch.where(keep, x, torch.nan)
        mean = torch.nanmean(masked, dim=-1, keepdim=True)
        var = (masked - mean).square().nanmean(dim=-1, keepdim=True)
        std = var.sqrt() + self.eps
        # A window with nothing observed has no statistics: use 0 / 1 instead of NaN.
        mean = torch.nan_to_num(mean, nan=0.0)
        std = torch.nan_to_num(std, nan=1.0)
        return mean.detach(), std.detach()

    @staticmethod
    def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Standardise; non-finite results (padding) become 0."""
        return torch.nan_to_num((x - mean) / std, nan=0.0, posinf=0.0, neginf=0.0)

    @staticmethod
    def denormalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        """Invert :meth:`normalize`."""
        return x * std + mean
