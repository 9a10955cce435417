"""Patch embedding of MOMENT: a linear map of each 8-step patch, a learned mask token,
and fixed sinusoidal positions. Parameter names match MOMENT's checkpoints."""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """The classic sin/cos table ``[1, n_positions, d_model]`` (MOMENT uses 5000 rows)."""
    pe = torch.zeros(n_positions, d_model)
    position = torch.arange(0, n_positions).float().unsqueeze(1)
    div_term = (torch.arange(0, d_model, 2).float() * -(math.log(10000.0) / d_model)).exp()
    pe[:, 0::2] = torch.sin(position * div_term)
    pe[:, 1::2] = torch.cos(position * div_term)
    return pe.unsqueeze(0)


class PositionalEmbedding(nn.Module):
    """Fixed sinusoidal positions; the buffer is not saved (it is recomputed)."""

    MAX_LEN = 5000

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.register_buffer("pe", sinusoidal_positions(self.MAX_LEN, d_model), persistent=False)

    def forward(self, n_patches: int) -> torch.Tensor:
        return self.pe[:, :n_patches]


class PatchEmbedding(nn.Module):
    """Embed ``[B, C, n_patches, patch_len]`` patches into ``[B, C, n_patches, d_model]``."""

    def __init__(
        self,
        d_model: int,
        patch_len: int,
        dropout: float = 0.1,
        add_positional_embedding: bool = True,
        value_embedding_bias: bool = False,
    ) -> None:
        super().__init__()
        self.d_model = d_model
        self.value_embedding = nn.Linear(patch_len, d_model, bias=value_embedding_bias)
        self.mask_embedding = nn.Parameter(torch.zeros(d_model))
        nn.init.orthogonal_(self.value_embedding.weight, gain=1.41)
        self.position_embedding = PositionalEmbedding(d_model) if add_positional_embedding else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, patches: torch.Tensor, patch_mask: torch.Tensor) -> torch.Tensor:
        """``patch_mask [B, n_patches]`` (or ``[B, C, n_patches]``, one per channel): 1 keeps
        the patch, 0 replaces it by the mask token."""
        keep = (patch_mask[:, None, :, None] if patch_mask.dim() == 2 else patch_mask[..., None]).to(patches.dtype)
        x = keep * self.value_embedding(patches) + (1 - keep) * self.mask_embedding
        if self.position_embedding is not None:
            x = x + self.position_embedding(x.shape[2])
        return self.dropout(x)
