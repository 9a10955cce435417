"""TRACE's reconstruction-based forecasting head.

The pretrained reconstruction head (``head.linear``: ``d_model -> patch_len``) turns
every token back into a time-domain patch, so the encoder output becomes a
``[B, C, L]`` signal in RevIN space. A tiny *temporal map* then maps those ``L``
values to the ``H`` future values. Variants (chosen by ``temporal_map``):

- ``"linear"``: ``Linear(L, H)`` — ``(L + 1) * H`` parameters.
- ``"truncate"``: ``Linear(k, H)`` on the last ``k`` reconstructed values only.
- ``"pool"``: average-pool the ``L`` values by ``pool`` then ``Linear(L / pool, H)``.
- ``"dwconv"``: a depth-wise separable conv over patches (per-patch kernel then
  point-wise mixing) followed by ``Linear(L, H)``.

The map is initialised to repeat the last observed (reconstructed) value, a
persistence forecast, so fine-tuning starts from a sensible point.
"""

from __future__ import annotations

import torch
from torch import nn

TEMPORAL_MAPS = ("linear", "truncate", "pool", "dwconv")


class ReconstructionForecastHead(nn.Module):
    """Reuse the pretrained reconstruction head and add a temporal map ``L -> H``."""

    def __init__(
        self,
        pretrain_head: nn.Module,
        context_length: int,
        horizon: int,
        temporal_map: str = "linear",
        truncate: int = 128,
        pool: int = 4,
        patch_len: int = 8,
        train_reconstruction_head: bool = False,
    ) -> None:
        super().__init__()
        if temporal_map not in TEMPORAL_MAPS:
            raise ValueError(f"temporal_map must be one of {TEMPORAL_MAPS}, got {temporal_map!r}")
        self.pretrain_head = pretrain_head
        for p in self.pretrain_head.parameters():
            p.requires_grad_(train_reconstruction_head)
        self.kind = temporal_map
        self.context_length = context_length
        self.horizon = horizon
        self.patch_len = patch_len
        if temporal_map == "truncate":
            self.n_in = min(truncate, context_length)
        elif temporal_map == "pool":
            if context_length % pool:
                raise ValueError(f"context_length {context_length} must be a multiple of pool {pool}")
            self.pool = nn.AvgPool1d(pool)
            self.n_in = context_length // pool
        else:
            self.n_in = context_length
        if temporal_map == "dwconv":
            n_patches = context_length // patch_len
            self.depthwise = nn.Conv1d(n_patches, n_patches, kernel_size=3, padding=1, groups=n_patches)
            self.pointwise = nn.Conv1d(n_patches, n_patches, kernel_size=1)
            for conv in (self.depthwise, self.pointwise):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        self.temporal = nn.Linear(self.n_in, horizon)
        with torch.no_grad():  # persistence start: every step copies the last input value
            self.temporal.weight.mul_(0.01)
            self.temporal.weight[:, -1] += 1.0
            self.temporal.bias.zero_()

    @property
    def output_layer(self) -> nn.Linear:
        """The final linear map (what :func:`trace_forecast.heads.ridge.ridge_solve` solves for)."""
        return self.temporal

    def features(self, tokens: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """The inputs of the temporal map ``[B, C, n_in]``."""
        rec = self.pretrain_head(tokens) * input_mask[:, None, :].to(tokens.dtype)
        if self.kind == "truncate":
            rec = rec[..., -self.n_in :]
        elif self.kind == "pool":
            b, c, length = rec.shape
            rec = self.pool(rec.reshape(b * c, 1, length)).reshape(b, c, -1)
        elif self.kind == "dwconv":
            b, c, length = rec.shape
            patches = rec.reshape(b * c, -1, self.patch_len)
            mixed = patches + self.pointwise(self.depthwise(patches))
            rec = mixed.reshape(b, c, length)
        return rec

    def forward(self, tokens: torch.Tensor, input_mask: torch.Tensor) -> torch.Tensor:
        """``tokens [B, C, n_patches, d_model]`` -> normalised forecast ``[B, C, H]``."""
        return self.temporal(self.features(tokens, input_mask))
