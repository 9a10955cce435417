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
    very short window), every observed step is scored. Missing values (NaN) are never
    scored.
    """
    enc = backbone.encode(x, input_mask, mask)
    rec = backbone.head(enc.tokens)
    target = backbone.normalizer.normalize(x, enc.mean, enc.std).clamp(-clip, clip)
    finite = torch.isfinite(x)
    missing = not bool(finite.all())
    weight = (((1 - mask) + visible_weight * mask) * input_mask)[:, None, :].expand_as(target).float()
    if missing:  # (complete data keeps the expanded weights: the same sums, bit for bit)
        weight = weight * finite
    if weight.sum() == 0:
        weight = input_mask[:, None, :].expand_as(target).float() * (finite if missing else 1.0)
    err = (rec.float() - target.float()) ** 2
    return (err * weight).sum() / weight.sum().clamp_min(1.0)


# A window whose scale is under this share of its series' counts less in training, down to
# nothing for a constant one (:func:`window_weights`).
DEGENERATE_SCALE = 0.1
WEIGHTINGS = ("fit", "series units")


def window_weights(std: torch.Tensor, scale: torch.Tensor | None, weighting: str = "fit") -> torch.Tensor | None:
    """Weight of each window's RevIN-space errors, for windows with RevIN ``std [B, C, 1]``
    from series of unit ``scale [B]`` (``None`` without scales: every window weighs the same).

    - ``"fit"`` (training losses and the closed-form fit): 1, RevIN's own scale-free loss,
      except for (nearly) constant windows, whose normalised targets are a division by almost
      zero: ``min(1, (std / (DEGENERATE_SCALE * scale))^2)``, so a constant window counts for
      next to nothing (its std is RevIN's floor; a sensor's flatline once made a fit diverge).
    - ``"series units"`` (choosing on validation windows): ``(std / scale)^2``, so that the
      weighted error is the error in the series' own units, what users measure (divided by
      the series' unit, so that series of any scale weigh the same).

    A series without a usable unit (constant, or nothing observed) lends its windows weight 0.
    """
    if scale is None:
        return None
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    scale = scale.to(std.dtype).reshape(-1, *([1] * (std.dim() - 1)))
    relative = std / scale
    weight = relative.square() if weighting == "series units" else (relative / DEGENERATE_SCALE).square().clamp(max=1.0)
    return torch.nan_to_num(weight, nan=0.0, posinf=0.0)


def normalized_mse(
    pred: torch.Tensor, y: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, clip: float = TARGET_CLIP,
    scale: torch.Tensor | None = None, weighting: str = "fit",
) -> torch.Tensor:
    """MSE between a RevIN-space forecast and the future ``y`` put in the same space;
    with ``scale`` (each window's series unit), weighted by :func:`window_weights`.
    Missing targets (NaN in ``y``) are not scored."""
    observed = torch.isfinite(y)
    complete = bool(observed.all())
    if not complete:  # a NaN target would poison the gradients: it becomes the mean, weighted 0
        y = torch.where(observed, y, mean)
    target = ((y - mean) / std).clamp(-clip, clip)
    err = (pred.float() - target.float()) ** 2
    weight = window_weights(std.float(), scale, weighting)
    if weight is None:
        if complete:
            return torch.mean(err)
        weight = torch.ones_like(err)
    weight = weight.expand_as(err)
    if not complete:
        weight = weight * observed
    return (err * weight).sum() / weight.sum().clamp_min(1e-12)
