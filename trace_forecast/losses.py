"""Training objectives, defined once and shared by fine-tuning and pretraining.

Both losses are computed in each window's RevIN space so that series of any scale
weigh the same. Targets are clipped to ``[-clip, clip]`` standard deviations: a window
whose visible part is nearly constant has a tiny standard deviation, and its hidden or
future values would otherwise produce enormous, uninformative errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:  # a type only: importing the backbone pulls in transformers
    from trace_forecast.backbone.moment import MomentBackbone

TARGET_CLIP = 10.0


def masked_reconstruction_loss(
    backbone: MomentBackbone,
    x: torch.Tensor,
    input_mask: torch.Tensor,
    mask: torch.Tensor,
    clip: float = TARGET_CLIP,
    visible_weight: float = 0.0,
) -> torch.Tensor:
    """MSE of the reconstruction on hidden (``mask == 0``), observed steps.

    ``visible_weight > 0`` also scores the visible observed steps with that weight
    (MOMENT scores hidden steps only; TRACE's forecasting head reuses the reconstruction
    of *visible* patches, so our pretraining asks for both). If nothing is hidden (a
    very short window), every observed step is scored.
    """
    enc = backbone.encode(x, input_mask, mask)
    rec = backbone.head(enc.tokens)
    target = backbone.normalizer.normalize(x, enc.mean, enc.std).clamp(-clip, clip)
    weight = (((1 - mask) + visible_weight * mask) * input_mask)[:, None, :].expand_as(target).float()
    if weight.sum() == 0:
        weight = input_mask[:, None, :].expand_as(target).float()
    err = (rec.float() - target.float()) ** 2
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


def window_weights(std: torch.Tensor, scale: torch.Tensor | None) -> torch.Tensor | None:
    """Weight of each window's RevIN-space errors: ``(std / scale)^2`` for windows with
    RevIN ``std [B, C, 1]`` from series of unit ``scale [B]``, so that a weighted RevIN-space
    error is the error in the series' own units (divided by the series' unit, so that series
    of any scale weigh the same). A (nearly) constant window gets (nearly) no weight: its
    normalised targets are meaningless, a division by almost zero. ``None`` without scales
    (every window weighs the same). A series without a usable unit (constant, or nothing
    observed) lends its windows weight 0."""
    if scale is None:
        return None
    scale = scale.to(std.dtype).reshape(-1, *([1] * (std.dim() - 1)))
    weight = (std / scale).square()
    return torch.nan_to_num(weight, nan=0.0, posinf=0.0)


def normalized_mse(
    pred: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, clip: float = TARGET_CLIP,
    scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """MSE between a RevIN-space forecast and the future ``y`` put in the same space;
    with ``scale`` (each window's series unit), weighted by :func:`window_weights`."""
    target = ((y - mean) / std).clamp(-clip, clip)
    err = (pred.float() - target.float()) ** 2
    weight = window_weights(std.float(), scale)
    if weight is None:
        return torch.mean(err)
    weight = weight.expand_as(err)
    return (err * weight).sum() / weight.sum().clamp_min(1e-12)
