"""MOMENT's linear-probing forecasting head: ``Flatten -> Linear(n_patches * d_model, H)``.

The baseline TRACE's reconstruction head replaces: ``64 * d_model * H`` parameters.
"""

from __future__ import annotations

import torch
from torch import nn


class LinearProbingHead(nn.Module):
    """Flatten all tokens and map them linearly to the horizon (as MOMENT does)."""

    def __init__(self, n_patches: int, d_model: int, horizon: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(n_patches * d_model, horizon)
        self.horizon = horizon

    @property
    def output_layer(self) -> nn.Linear:
        return self.linear

    def encode(self, backbone: nn.Module, x: torch.Tensor, input_mask: torch.Tensor):
        """Run ``backbone`` on the context: ``(features, mean, std)``."""
        enc = backbone.encode(x, input_mask)
        return self.features(enc.tokens, input_mask), enc.mean, enc.std

    def features(self, tokens: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """Flattened tokens ``[B, C, n_patches * d_model]``."""
        return tokens.flatten(start_dim=2)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        """Features -> normalised forecast ``[B, C, H]``."""
        return self.dropout(self.linear(features))

    def forward(self, tokens: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """``tokens [B, C, n_patches, d_model]`` -> normalised forecast ``[B, C, H]``."""
        return self.project(self.features(tokens, input_mask))
