"""Missing values inside the backbone: what the encoder sees where a series has NaN.

Gaps are told apart by their length and their place (``docs/design.md``, "Missing values"):

- **Short gaps** (fewer steps than a patch) are bridged by a straight line between their
  observed neighbours. A patch with one or two missing steps still carries six or seven
  observations, and hiding it would throw them away: at 10 % of steps missing at random,
  57 % of 8-step patches have a gap, and hiding them all costs zero-shot forecasts far
  more than the bridge does (``docs/benchmarks_missing_values.md``).
- **Long gaps** (a patch or more) are the mask token's: every patch they touch is hidden,
  and the encoder reconstructs it from the rest of the context, the skill masked-reconstruction
  pretraining gave it. There a straight line is a poor guess (a day of hourly data drawn flat).
- **Short gaps at an end.** After the left padding or at the start of the window, a gap takes
  the nearest observed value. Beside hidden steps -- the last values before a forecast's hidden
  future, or a patch hidden for reconstruction -- a single missing step takes the last
  observed value too, and a gap of two or more is *deferred*: the backbone fills it with its
  own reconstruction from a first pass with the gap's patch hidden too
  (:meth:`~trace_forecast.backbone.moment.MomentBackbone.encode`). The hidden steps'
  placeholder values are no neighbour there (a missing last value bridged towards the
  future's zeros halved airline's forecast), and a flat copy of the last value drags a
  seasonal forecast off as the gap grows (``docs/benchmarks_missing_values.md``, "Missing
  last values").

RevIN's statistics use the observed and bridged steps (a bridged step lies between two
observed ones; in a development run, counting them matched interpolate-then-forecast at
random missing steps, where observed-only statistics trailed it slightly), never the
reconstructed contents of a hidden patch. Written here rather than taken from a
library: the fill has to happen per window on tensors inside the forward pass, with the
patch geometry deciding what is "short".
"""

from __future__ import annotations

import torch


def bridge_short_gaps(x: torch.Tensor, finite: torch.Tensor, max_gap: int,
                      within: torch.Tensor | None = None, hidden: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fill the gaps of at most ``max_gap`` steps of ``x [..., L]``: linearly between their
    observed neighbours, or with the nearest observed value at either end of the series.

    ``within`` (``[..., L]``, default everywhere) marks the steps that belong to the series:
    left padding and hidden steps (the appended future of a forecast, patches hidden for
    reconstruction) do not, so they are never a gap's neighbour (not the future's placeholder
    zeros) and a gap beside them is an edge gap of its own length. ``hidden`` marks the hidden
    steps: a short gap of two or more steps beside one is *deferred* (left unfilled, for the
    model to reconstruct) instead of taking the nearest value.

    Returns ``(x, filled, deferred)``: ``x`` with the bridged steps filled (other missing steps
    0), the mask ``[..., L]`` of steps that now hold a value (observed or bridged), and the
    mask of deferred steps.
    """
    length = x.shape[-1]
    within = torch.ones_like(finite) if within is None else within.expand_as(finite).bool()
    known, missing = finite & within, ~finite & within
    steps = torch.arange(length, device=x.device).expand_as(x)
    # each missing run's bounds (the steps just outside it) and whether they are observed neighbours
    before = torch.where(missing, torch.full_like(steps, -1), steps).cummax(-1).values
    after = torch.where(missing, torch.full_like(steps, length), steps).flip(-1).cummin(-1).values.flip(-1)
    has_prev = (before >= 0) & known.gather(-1, before.clamp(min=0))
    has_next = (after < length) & known.gather(-1, after.clamp(max=length - 1))
    gap = after - before - 1
    bridge = missing & (has_prev | has_next) & (gap <= max_gap)
    deferred = torch.zeros_like(bridge)
    if hidden is not None:  # a short gap of 2 or more beside hidden steps: left for the model to fill
        hidden = hidden.expand_as(finite).bool()
        deferred = bridge & (gap >= 2) & (((before >= 0) & hidden.gather(-1, before.clamp(min=0)))
                                          | ((after < length) & hidden.gather(-1, after.clamp(max=length - 1))))
        bridge = bridge & ~deferred
    values = torch.where(finite, x, torch.zeros((), dtype=x.dtype, device=x.device))
    left = values.gather(-1, before.clamp(min=0))
    right = values.gather(-1, after.clamp(max=length - 1))
    share = (steps - before).to(x.dtype) / (after - before).clamp(min=1).to(x.dtype)
    share = torch.where(has_prev, torch.where(has_next, share, 0.0), 1.0)  # edges: the nearest value
    filled_values = torch.where(bridge, left + share * (right - left), values)
    return filled_values, finite | bridge, deferred


def complete_patches(present: torch.Tensor, patch_len: int) -> torch.Tensor:
    """``present [..., L]`` -> ``[..., L]``: 1 on every step of a patch whose steps are all present."""
    complete = present.unfold(-1, patch_len, patch_len).all(-1)
    return complete.repeat_interleave(patch_len, dim=-1)


def fill_for_encoder(x: torch.Tensor, patch_len: int, max_gap: int | None = None,
                     within: torch.Tensor | None = None, hidden: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """What the encoder sees of ``x [B, C, L]`` with missing (non-finite) steps:
    ``(values, present, visible, deferred)`` -- short gaps bridged, other missing steps 0; the
    observed and bridged steps (for RevIN); the steps of patches shown to the encoder (the others take
    the mask token); the short gaps beside ``hidden`` steps, left for the model
    (:func:`bridge_short_gaps`). ``max_gap``: the longest gap bridged (default ``patch_len - 1``;
    0 hides every patch with a missing step, the ablation)."""
    finite = torch.isfinite(x)
    values, present, deferred = bridge_short_gaps(x, finite, patch_len - 1 if max_gap is None else max_gap,
                                                  within, hidden)
    return values, present, complete_patches(present, patch_len), deferred
