"""Glitches in a forecasting context: isolated values so far from the rest that they can only be
errors (a sensor's spike, a ``-9999`` placeholder), read as missing steps.

RevIN standardises a window by its own mean and standard deviation, so one value of ``1e4`` in a
window whose values move by 2 becomes the window's whole scale: everything else is flattened to
a constant and the forecast loses the series (``docs/design.md``, "Glitches"). A step is a glitch
when

- it lies more than :data:`GLITCH_SIGMAS` robust standard deviations (``1.4826 * MAD``, which
  the glitch itself barely moves) from the window's median: for Gaussian noise that never
  happens, and in a 512-step window such a value alone adds more than three quarters to the
  variance RevIN divides by;
- it belongs to a run of such steps shorter than a patch: a longer run is a regime, not an
  error. That holds at the end of the window too, where a jump may be a new level rather than a
  glitch: the forecast follows it once it has lasted a patch (8 steps). Read as a value, one
  ``-9999`` as the last step turns the whole forecast to thousands of the series' units, while a
  real jump held back for a few steps costs the jump's size.

A window whose MAD is 0 (intermittent or mostly constant series) has no robust scale and keeps
every value. Glitches become missing steps, which the backbone already handles
(:mod:`~trace_forecast.backbone.missing`): bridged by a straight line between their neighbours
and left out of RevIN's statistics. A training window's target is read with its context (the
rule on the whole window), so a glitch there is a missing target, which the loss, the ridge head
start and validation leave out, instead of an error thousands of times the series' scale.

The covariate head reads covariates and the target's recent values with the same rule
(:func:`arrays_without_glitches`): one ``-9999`` in a driver would otherwise set the spread it is
standardised by, or be read as ten standard deviations at every step of the map.

This applies to forecasting only: reconstruction, and so anomaly scoring, sees every value.
Written here rather than taken from a library: it runs per window and channel on tensors inside
the forward pass.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

#: How many robust standard deviations from the window's median a value must lie to be a glitch.
GLITCH_SIGMAS = 20.0
_MAD_TO_STD = 1.4826  # the MAD of a normal distribution, in standard deviations


def glitch_steps(x: torch.Tensor, input_mask: torch.Tensor, max_run: int) -> torch.Tensor:
    """Boolean ``[B, C, L]``: the glitches of ``x [B, C, L]`` whose observed steps are marked by
    ``input_mask`` (``[B, L]`` or ``[B, C, L]``); runs of at most ``max_run`` steps."""
    mask = input_mask[:, None, :] if input_mask.dim() == 2 else input_mask
    observed = mask.bool().expand_as(x) & torch.isfinite(x)
    values = torch.where(observed, x, torch.nan)
    median = values.nanmedian(dim=-1, keepdim=True).values
    mad = (values - median).abs().nanmedian(dim=-1, keepdim=True).values
    far = observed & ((x - median).abs() > GLITCH_SIGMAS * _MAD_TO_STD * mad) & (mad > 0)
    if not bool(far.any()):
        return far
    length = x.shape[-1]
    steps = torch.arange(length, device=x.device).expand_as(x)
    before = torch.where(far, -1, steps).cummax(-1).values  # the last step at or before that is not far
    after = torch.where(far, length, steps).flip(-1).cummin(-1).values.flip(-1)  # the next one
    return far & (after - before - 1 <= max_run)


def without_glitches(x: torch.Tensor, input_mask: torch.Tensor, patch_len: int) -> torch.Tensor:
    """``x`` with its glitches (:func:`glitch_steps`, runs shorter than a patch) set to NaN;
    ``x`` itself when it has none."""
    glitches = glitch_steps(x, input_mask, patch_len - 1)
    if not bool(glitches.any()):
        return x
    return torch.where(glitches, torch.nan, x)


def target_without_glitches(x: torch.Tensor, input_mask: torch.Tensor, y: torch.Tensor, patch_len: int) -> torch.Tensor:
    """A training window's target ``y [B, C, H]`` with its glitches set to NaN, read on the whole
    window (context ``x [B, C, L]``, then target); ``y`` itself when it has none. (The context's
    own glitches are the forward pass's, :func:`without_glitches`, as at prediction.)"""
    mask = input_mask[:, None, :] if input_mask.dim() == 2 else input_mask
    joined = torch.cat([x, y.to(x.dtype)], dim=-1)
    observed = torch.cat([mask.expand_as(x), torch.ones(y.shape, dtype=mask.dtype, device=mask.device)], dim=-1)
    glitches = glitch_steps(joined, observed, patch_len - 1)[..., x.shape[-1]:]
    if not bool(glitches.any()):
        return y
    return torch.where(glitches, torch.nan, y)


def arrays_without_glitches(windows: Sequence[np.ndarray], max_run: int, chunk: int = 1024) -> list[np.ndarray]:
    """Windows ``[T, K]`` (steps by columns, NaN missing), each with its glitches
    (:func:`glitch_steps`, runs of at most ``max_run`` steps) set to NaN per column; a window
    without any is returned as it is. Windows of one shape are read together, ``chunk`` at a time."""
    out = list(windows)
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for i, window in enumerate(out):
        if window.size:
            by_shape.setdefault(window.shape, []).append(i)
    for shape, members in by_shape.items():
        for start in range(0, len(members), chunk):
            part = members[start : start + chunk]
            x = torch.from_numpy(np.stack([out[i] for i in part]).transpose(0, 2, 1))
            glitches = glitch_steps(x, torch.ones(len(part), shape[0], dtype=torch.bool), max_run)
            if not bool(glitches.any()):
                continue
            for i, found in zip(part, glitches.numpy().transpose(0, 2, 1), strict=True):
                if found.any():
                    out[i] = np.where(found, np.nan, out[i])
    return out
