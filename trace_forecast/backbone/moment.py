"""A MOMENT-compatible backbone in plain torch.

Same module tree and parameter names as MOMENT (``normalizer``, ``patch_embedding``,
``encoder`` = a ``transformers`` T5 encoder stack, ``head.linear``), so public
checkpoints load without key remapping. Input is ``x [B, C, L]`` and
``input_mask [B, L]`` (1 = observed, 0 = left padding); channels are processed
independently by folding them into the batch.

Missing values (NaN in ``x``) are handled inside the model, never filled before it
(:mod:`trace_forecast.backbone.missing`): gaps shorter than a patch are bridged, and a patch in a longer gap enters the encoder as
the mask token, which masked-reconstruction pretraining taught the backbone to fill in.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import T5Config
from transformers.activations import NewGELUActivation
from transformers.models.t5.modeling_t5 import T5Stack

from trace_forecast.backbone.config import MomentConfig
from trace_forecast.backbone.embedding import PatchEmbedding
from trace_forecast.backbone.missing import complete_patches, fill_for_encoder
from trace_forecast.backbone.revin import RevIN


class PretrainHead(nn.Module):
    """MOMENT's reconstruction head: every token back to ``patch_len`` values."""

    def __init__(self, d_model: int, patch_len: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(d_model, patch_len)
        nn.init.orthogonal_(self.linear.weight, gain=1.41)
        nn.init.zeros_(self.linear.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, C, n_patches, d_model]`` -> ``[B, C, n_patches * patch_len]``."""
        return self.linear(self.dropout(tokens)).flatten(start_dim=2)


def build_t5_encoder(t5_config: dict) -> T5Stack:
    """A T5 encoder stack from a config dict; never downloads anything.

    ``transformers`` computes T5's ``gelu_new`` activation as a chain of element-wise
    Python ops; it is the tanh approximation of GELU, which torch has as one fused
    kernel. The swap changes values by at most ~5e-7 and runs the activation about 9×
    faster on a CPU (a fifth of the embedded backbone's forward time).
    """
    cfg = T5Config(**{k: v for k, v in t5_config.items() if not k.startswith("_")})
    cfg.is_decoder = False
    cfg.use_cache = False
    cfg.is_encoder_decoder = False
    stack = T5Stack(cfg)
    for module in stack.modules():
        if isinstance(getattr(module, "act", None), NewGELUActivation):
            module.act = nn.GELU(approximate="tanh")
    return stack


@dataclass
class Encoded:
    """What the encoder produced for a batch, with the RevIN statistics to undo it."""

    tokens: torch.Tensor  # [B, C, n_patches, d_model]
    mean: torch.Tensor  # [B, C, 1]
    std: torch.Tensor  # [B, C, 1]


def patch_view(mask: torch.Tensor, patch_len: int) -> torch.Tensor:
    """``[B, L]`` time-step mask -> ``[B, L / patch_len]``: 1 where the whole patch is 1."""
    return (mask.unfold(-1, patch_len, patch_len).sum(-1) == patch_len).to(mask.dtype)


def attention_mask(input_mask: torch.Tensor, patch_len: int) -> torch.Tensor:
    """Patches the encoder attends to: fully observed ones, as in MOMENT.

    A history shorter than one patch has no fully observed patch; its partially
    observed patches are attended to instead, so attention never runs on nothing.
    """
    full = patch_view(input_mask, patch_len)
    partial = (input_mask.unfold(-1, patch_len, patch_len).sum(-1) > 0).to(full.dtype)
    empty = full.sum(-1, keepdim=True) == 0
    return torch.where(empty, partial, full)


class MomentBackbone(nn.Module):
    """RevIN -> patches -> patch embedding -> T5 encoder -> reconstruction head."""

    def __init__(self, config: MomentConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_len = config.patch_len
        self.max_bridged_gap: int | None = None  # missing values: fill_for_encoder's default
        self.normalizer = RevIN()
        self.patch_embedding = PatchEmbedding(
            d_model=config.d_model,
            patch_len=config.patch_len,
            dropout=config.dropout,
            add_positional_embedding=config.add_positional_embedding,
            value_embedding_bias=config.value_embedding_bias,
        )
        self.encoder = build_t5_encoder(config.t5_config)
        self.head = PretrainHead(config.d_model, config.patch_len, config.dropout)

    def _check_input(self, x: torch.Tensor, input_mask: torch.Tensor | None) -> torch.Tensor:
        if x.ndim != 3:
            raise ValueError(f"x must be [batch, channels, time], got shape {tuple(x.shape)}")
        if x.shape[-1] % self.patch_len:
            raise ValueError(
                f"time length {x.shape[-1]} must be a multiple of patch_len {self.patch_len}"
            )
        if input_mask is None:
            return torch.ones(x.shape[0], x.shape[-1], device=x.device, dtype=x.dtype)
        return input_mask.to(x.dtype)

    def encode(
        self,
        x: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> Encoded:
        """Encode ``x [B, C, L]``.

        ``input_mask [B, L]`` marks observed steps (0 = padding: excluded from RevIN
        statistics and from attention). ``mask [B, L]`` marks steps shown to the model
        (0 = hidden behind the mask token, as in masked-reconstruction pretraining).
        Missing values (NaN or infinite steps of ``x``, per channel): gaps shorter than a patch are bridged and the patches of longer ones
        hidden behind the mask token (:func:`~trace_forecast.backbone.missing.fill_for_encoder`); a short
        gap of two or more steps beside hidden steps is reconstructed first (:meth:`_fill_missing`).
        """
        input_mask = self._check_input(x, input_mask)
        mask = torch.ones_like(input_mask) if mask is None else mask.to(x.dtype)
        finite = torch.isfinite(x)
        if bool(finite.all()):  # complete data: the plain MOMENT path
            statistics_mask, shown = mask * input_mask, patch_view(mask, self.patch_len)
        else:
            x, statistics_mask, shown = self._fill_missing(x, input_mask, mask)
        return self._encode_filled(x, input_mask, statistics_mask, shown)

    def _encode_filled(self, x: torch.Tensor, input_mask: torch.Tensor, statistics_mask: torch.Tensor,
                       shown: torch.Tensor) -> Encoded:
        """The encoder on finite ``x``: RevIN over ``statistics_mask``, the mask token on the
        patches that ``shown`` hides."""
        batch, channels, _ = x.shape
        mean, std = self.normalizer.statistics(x, statistics_mask)
        z = self.normalizer.normalize(x, mean, std)
        patches = z.unfold(-1, self.patch_len, self.patch_len)
        emb = self.patch_embedding(patches, shown)
        n_patches = emb.shape[2]
        emb = emb.reshape(batch * channels, n_patches, -1)
        attention = attention_mask(input_mask, self.patch_len).repeat_interleave(channels, dim=0)
        out = self.encoder(inputs_embeds=emb, attention_mask=attention).last_hidden_state
        return Encoded(out.reshape(batch, channels, n_patches, -1), mean, std)

    def _fill_missing(self, x: torch.Tensor, input_mask: torch.Tensor, mask: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(values, statistics mask [B, C, L], shown patches [B, C, N])`` of ``x`` with missing
        steps (:func:`~trace_forecast.backbone.missing.fill_for_encoder`). A short gap of two or
        more steps beside hidden steps (the last values before a forecast's hidden future) is the model's to fill,
        as pretraining taught it: a first pass with the gap's patch hidden too reconstructs it,
        then it counts as bridged (the whole batch runs: DSIC's draws hold one gate per row)."""
        within = (input_mask * mask)[:, None, :] > 0         # not padding, not hidden
        hidden = (input_mask * (1 - mask))[:, None, :] > 0   # hidden steps of the series
        x, present, complete, deferred = fill_for_encoder(x, self.patch_len, self.max_bridged_gap, within, hidden)
        if bool(deferred.any()):
            gap_patches = complete_patches(~deferred.any(1), self.patch_len).to(mask.dtype)  # [B, L]: 0 on their patches
            first = mask * gap_patches
            with torch.no_grad():
                enc = self._encode_filled(x, input_mask, first[:, None, :] * input_mask[:, None, :] * present.to(x.dtype),
                                          patch_view(first[:, None, :] * complete.to(x.dtype), self.patch_len))
                rec = self.normalizer.denormalize(self.head(enc.tokens).to(x.dtype), enc.mean, enc.std)
            x = torch.where(deferred, rec, x)
            present = present | deferred
            complete = complete_patches(present, self.patch_len)
        statistics_mask = mask[:, None, :] * input_mask[:, None, :] * present.to(x.dtype)
        return x, statistics_mask, patch_view(mask[:, None, :] * complete.to(x.dtype), self.patch_len)

    def reconstruct(
        self,
        x: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        normalized: bool = False,
    ) -> torch.Tensor:
        """Masked-patch reconstruction ``[B, C, L]`` (in the input's scale unless ``normalized``)."""
        enc = self.encode(x, input_mask, mask)
        rec = self.head(enc.tokens)
        return rec if normalized else self.normalizer.denormalize(rec, enc.mean, enc.std)

    def forward(
        self,
        x: torch.Tensor,
        input_mask: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self.reconstruct(x, input_mask, mask)
